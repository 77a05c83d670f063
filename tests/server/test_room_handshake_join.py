"""A join carried in the websocket handshake (`signaling.handshake_join`): read before the upgrade, welcomed at once,
refused as a join frame is, relayed to the process that holds the room, and joined with one statement."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import websockets
from websockets.typing import Subprotocol

from signaling import handshake_join
from tests.conftest import Api
from tests.server.test_consult_room import capi, recv, room_url, token_for  # noqa: F401 - the fixture
from tests.server.test_consults import accepted_consult, close_api
from tests.server.test_room_join import logged_api
from tests.server.test_room_relay import base, closed_with, owner, two  # noqa: F401 - the fixture

SDP = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"


def carrying(join: dict[str, Any]) -> list[Subprotocol]:
    return [Subprotocol(p) for p in handshake_join.offered(json.dumps(join))]


async def handshake(api: Api, consult_id: str, protocols: list[Subprotocol]) -> websockets.ClientConnection:
    return await websockets.connect(room_url(api, consult_id), subprotocols=protocols)


async def test_a_join_in_the_handshake_is_welcomed_without_a_join_frame(capi: Api) -> None:  # noqa: F811
    consult_id, pk, sp = await accepted_consult(capi)
    pk_ws = await handshake(capi, consult_id, carrying({"type": "join", "token": await token_for(capi, consult_id, pk), "kind": "aiortc"}))
    assert pk_ws.subprotocol == handshake_join.PROTOCOL
    welcome = await recv(pk_ws)  # nothing sent: the handshake was the join
    assert welcome["type"] == "welcome" and welcome["role"] == "requester"
    # A member joining with a frame, as before, meets it in the same room; signaling flows both ways.
    sp_ws = await websockets.connect(room_url(capi, consult_id))
    assert sp_ws.subprotocol is None
    await sp_ws.send(json.dumps({"type": "join", "token": await token_for(capi, consult_id, sp), "kind": "aiortc"}))
    sp_welcome = await recv(sp_ws, "welcome")
    assert (await recv(pk_ws, "presence"))["user"] == sp_welcome["user"]
    await pk_ws.send(json.dumps({"type": "offer", "to": sp_welcome["user"], "sdp": SDP}))
    assert (await recv(sp_ws, "offer"))["from"] == welcome["user"]
    # A join frame after a handshake join is a second join: refused, the socket stays.
    await pk_ws.send(json.dumps({"type": "join", "token": "A" * 43, "kind": "aiortc"}))
    assert (await recv(pk_ws, "error"))["code"] == "invalid_message"
    await pk_ws.close()
    await sp_ws.close()


@pytest.mark.parametrize(("protocols", "want"), [
    (carrying({"type": "join", "token": "A" * 43, "kind": "aiortc"}), ("token_rejected", "token", 4401)),
    (carrying({"type": "join", "token": "A" * 43, "kind": "carrier pigeon"}), ("invalid_message", "kind", 4400)),
    (carrying({"type": "chat", "id": uuid.uuid4().hex, "text": "halo"}), ("invalid_message", "type", 4400)),
    ([Subprotocol(handshake_join.PROTOCOL), Subprotocol("join.not!base64")], ("invalid_message", "join", 4400)),
    ([Subprotocol(handshake_join.PROTOCOL), Subprotocol("join." + base64.urlsafe_b64encode(b"{not json").decode())],
     ("invalid_message", None, 4400)),
])
async def test_a_refused_handshake_join_gets_the_error_and_close_of_a_join_frame(
    capi: Api, protocols: list[Subprotocol], want: tuple[str, str, int]  # noqa: F811
) -> None:
    consult_id, _, _ = await accepted_consult(capi)
    ws = await handshake(capi, consult_id, protocols)
    reply = await recv(ws)
    assert (reply["code"], reply["field"], await closed_with(ws)) == want


async def test_a_handshake_join_of_a_fresh_room_sends_one_statement(demo_dsn: str, tmp_path: Path) -> None:
    sent: list[str] = []
    api = await logged_api(demo_dsn, tmp_path, sent)
    try:
        consult_id, pk, _ = await accepted_consult(api)
        join = {"type": "join", "token": await token_for(api, consult_id, pk), "kind": "aiortc"}
        sent.clear()
        ws = await handshake(api, consult_id, carrying(join))
        assert (await recv(ws))["type"] == "welcome"
        joined = [q for q in sent if "consult_grants" in q or q.strip() == "SELECT 1"]
        assert len(joined) == 1 and "room_owners" in joined[0], joined  # no health check: the claim's read is one
        await ws.close()
    finally:
        await close_api(api)


async def test_a_handshake_join_at_another_process_is_relayed_to_the_room(two: tuple[Api, Api], con: asyncpg.Connection) -> None:  # noqa: F811
    a, b = two
    consult_id, pk, sp = await accepted_consult(a)
    pk_ws = await handshake(a, consult_id, carrying({"type": "join", "token": await token_for(a, consult_id, pk), "kind": "aiortc"}))
    pk_welcome = await recv(pk_ws, "welcome")
    assert await owner(con, consult_id) == base(a)
    sp_ws = await handshake(b, consult_id, carrying({"type": "join", "token": await token_for(b, consult_id, sp), "kind": "aiortc"}))
    welcome = await recv(sp_ws, "welcome")  # from the owner, through b
    assert [p["user"] for p in welcome["peers"]] == [pk_welcome["user"]]
    await recv(pk_ws, "presence")
    await pk_ws.send(json.dumps({"type": "offer", "to": welcome["user"], "sdp": SDP}))
    assert (await recv(sp_ws, "offer"))["from"] == pk_welcome["user"]  # relayed by b both ways
    await asyncio.gather(pk_ws.close(), sp_ws.close())
