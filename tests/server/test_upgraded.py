"""An open socket keeps nothing of its 101: the response carried the security headers, the socket holds no copy of
them (about 1 KiB a socket otherwise, for as long as it is open). (Its request's head aiohttp's connection handler
keeps in its own frame whatever the request does: a copy without its headers would only add one.)"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import aiohttp
import asyncpg
import pytest
import websockets
from aiohttp import web

from server.app import create_app
from server.config import LimitSettings
from server.connections import GuardedRunner
from server.demo_region import DEMO_PASSWORD
from server.keys import WEBSOCKETS
from server.upgraded import LiveSocket
from tests.conftest import Api, app_config, start_api
from tests.server.test_consults import close_api, consult_config
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


async def test_a_room_socket_pinged_read_and_closed_holds_no_attribute_in_its_dict_that_a_new_one_does_not(
    demo_dsn: str, tmp_path: Path
) -> None:
    # CPython shares one key table, of at most 30 keys, among the dicts of a class's instances. aiohttp's websocket
    # sets 17 in its __init__ and more than 13 others over its life (prepared, pinged, read, closed): past the 30th,
    # a socket held a dict of its own, ~1 KiB, from its first ping on.
    fresh = set(vars(LiveSocket(heartbeat=1.0)))
    api = await start_api(demo_dsn, consult_config(demo_dsn, tmp_path, heartbeat_s=0.5))
    try:
        _, pk_ws, _ = await room(api)
        (socket, *_) = api.server.app[WEBSOCKETS]
        await asyncio.sleep(1.5)  # pinged and answered: websockets answers a ping by itself
        assert socket._heartbeat_when > 0 and socket._pong_response_cb is None  # type: ignore[attr-defined]
        assert set(vars(socket)) <= fresh, set(vars(socket)) - fresh
        await pk_ws.close()
        for _ in range(50):
            if socket.closed:
                break
            await asyncio.sleep(0.05)
        assert socket.closed and set(vars(socket)) <= fresh, set(vars(socket)) - fresh
    finally:
        await close_api(api)


async def plain_websocket_attributes() -> int:
    """The size of the attribute table of aiohttp's own websocket, open in a bare app, in this process."""
    sizes: list[int] = []

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=20.0)
        await ws.prepare(request)
        await ws.send_str("hello")
        sizes.append(sys.getsizeof(vars(ws)))
        async for _ in ws:
            pass
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        async with websockets.connect(f"ws://{host}:{port}/ws") as ws:
            await ws.recv()
    finally:
        await runner.cleanup()
    return sizes[0]


async def test_an_open_socket_holds_no_request_queue_nor_a_larger_attribute_table_than_aiohttps_and_still_serves(
    demo_dsn: str,
) -> None:
    app = create_app(app_config(demo_dsn), demo_dsn)
    runner = GuardedRunner(app, LimitSettings(), shutdown_timeout=1.0)  # the server's own connection handler
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        async with aiohttp.ClientSession() as http:
            async with http.post(f"http://{host}:{port}/api/auth/login", json={"username": "operator", "password": DEMO_PASSWORD}) as r:
                token = (await r.json())["token"]
            async with websockets.connect(f"ws://{host}:{port}/ws/events?token={token}") as ws:
                assert json.loads(await ws.recv())["type"] == "hello"
                (socket,) = app[WEBSOCKETS]
                assert socket._req is not None
                # Its connection parses no more requests, so it keeps no queue for them (an empty deque is ~760 bytes).
                assert socket._req.protocol._messages == ()  # type: ignore[attr-defined]
                # Its own state adds no key to aiohttp's attribute table: past 30 keys each socket would hold a table
                # of its own (~1.5 KiB) rather than share the keys of every socket's.
                assert sys.getsizeof(vars(socket)) <= await plain_websocket_attributes()
                # And it still serves: its messages are answered, and the end of its session closes it.
                await ws.send(json.dumps({"type": "ping"}))
                assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "pong"
                async with http.post(f"http://{host}:{port}/api/auth/logout", headers={"Authorization": f"Bearer {token}"}) as r:
                    assert r.status in (200, 204)
                with pytest.raises(websockets.ConnectionClosed):
                    await asyncio.wait_for(ws.recv(), 5)
                assert (ws.close_code, ws.close_reason) == (4401, "session_revoked")
        for _ in range(50):
            if not app[WEBSOCKETS]:
                break
            await asyncio.sleep(0.05)
        assert not app[WEBSOCKETS]
    finally:
        await runner.cleanup()
