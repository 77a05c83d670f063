"""permessage-deflate, decided per socket kind: offered by every browser, accepted only on the consoles' sockets.

A deflate context costs the server about 100 KiB a socket (`bench/bench_memory.py`): worth it for the few
consoles that get every unit's positions in batches, not for thousands of phones and room sockets whose
messages are small.
"""

from __future__ import annotations

import asyncpg
import pytest
import websockets

from server.demo_region import DEMO_PASSWORD
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
