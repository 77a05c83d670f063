"""permessage-deflate, decided per socket kind: offered by every browser, accepted only on the consoles' sockets.

A deflate context costs the server about 100 KiB a socket (`bench/bench_memory.py`): worth it for the few
consoles that get every unit's positions in batches, not for thousands of phones and room sockets whose
messages are small. A console deflates each message with a compressor of its own, so an idle one holds none.
"""

from __future__ import annotations

import datetime as dt
import json

import asyncpg
import pytest
import websockets

from server.demo_region import DEMO_PASSWORD
from server.keys import POSITIONS, WEBSOCKETS
from tests.conftest import Api
from tests.server.dispatch_support import CREW_PASSWORD, Socket, crew_for
from tests.server.test_consult_room import capi, join, token_for  # noqa: F401 - capi is a fixture
from tests.server.test_consults import accepted_consult


def deflate(ws: websockets.ClientConnection) -> bool:
    """Whether the server accepted the deflate the client (websockets, like every browser) offered."""
    assert ws.response is not None
    return "permessage-deflate" in (ws.response.headers.get("Sec-WebSocket-Extensions") or "")


@pytest.mark.parametrize("path,user,compressed", [
    ("/ws/operator", "operator", True), ("/ws/unit", None, False), ("/ws/events", "specialist", False),
])
async def test_live_sockets_deflate_only_for_the_consoles(capi: Api, con: asyncpg.Connection, path: str, user: str | None,  # noqa: F811
                                                         compressed: bool) -> None:
    name = user or await crew_for(con, "ns-01")
    socket = await Socket.open(capi, path, await capi.login(name, DEMO_PASSWORD if user else CREW_PASSWORD))
    try:
        assert deflate(socket.ws) is compressed
    finally:
        await socket.ws.close()


async def test_room_sockets_never_deflate(capi: Api) -> None:  # noqa: F811
    consult_id, puskesmas, _ = await accepted_consult(capi)
    ws, welcome = await join(capi, consult_id, await token_for(capi, consult_id, puskesmas))
    try:
        assert welcome["type"] == "welcome" and not deflate(ws)
    finally:
        await ws.close()


async def test_a_console_deflates_each_message_on_its_own_and_keeps_no_compressor_while_idle(capi: Api) -> None:  # noqa: F811
    socket = await Socket.open(capi, "/ws/operator", await capi.login("operator", DEMO_PASSWORD))
    try:
        assert deflate(socket.ws)
        epoch = dt.datetime.now(dt.UTC).timestamp()
        positions = capi.server.app[POSITIONS]
        for n in range(3):  # messages after the hello: each inflates (the client's inflater checks every frame)
            positions._on_notify(json.dumps([[f"u-{n}", -6.3, 106.7, epoch]]))
            message = await socket.wait_for(lambda m: m["type"] == "positions")
            assert [u["id"] for u in message["units"]] == [f"u-{n}"]
        await socket.ws.send(json.dumps({"type": "ping"}))
        assert (await socket.wait_for(lambda m: m["type"] == "pong"))["type"] == "pong"
        (server_side,) = capi.server.app[WEBSOCKETS]
        assert server_side.compress and server_side._writer is not None
        assert server_side._writer._compressobj is None  # no ~260 KiB deflate context held between messages
    finally:
        await socket.ws.close()
