"""An open socket keeps nothing of its 101: the response carried the security headers, the socket holds no copy of
them (about 1 KiB a socket otherwise, for as long as it is open). (Its request's head aiohttp's connection handler
keeps in its own frame whatever the request does: a copy without its headers would only add one.)"""

from __future__ import annotations

from pathlib import Path

import asyncpg
import websockets

from server.keys import WEBSOCKETS
from tests.conftest import Api
from tests.server.test_consults import close_api
from tests.server.test_idle_sockets import unit_sockets
from tests.server.test_socket_flood import room, room_api_with


def headers_kept(api: Api) -> list[int]:
    """How many response headers each of the server's open sockets still holds."""
    return [len(ws.headers) for ws in api.server.app[WEBSOCKETS]]


async def test_a_unit_socket_keeps_no_response_headers(api: Api, con: asyncpg.Connection) -> None:
    _, sockets = await unit_sockets(api, con, 3)
    assert sockets[0].ws.response.headers["X-Content-Type-Options"] == "nosniff"  # sent on the 101 all the same
    assert headers_kept(api) == [0, 0, 0]


async def test_a_room_socket_keeps_no_response_headers(demo_dsn: str, tmp_path: Path) -> None:
    api = await room_api_with(demo_dsn, tmp_path)
    try:
        _, pk_ws, sp_ws = await room(api)
        for ws in (pk_ws, sp_ws):
            assert isinstance(ws, websockets.ClientConnection) and ws.response is not None
            assert ws.response.headers["X-Frame-Options"] == "DENY"
        assert headers_kept(api) == [0, 0]
    finally:
        await close_api(api)
