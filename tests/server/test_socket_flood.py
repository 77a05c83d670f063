"""Greedy websocket clients against the real app: every message kind is rate-limited per socket,
a socket over its limit gets one ``rate_limited`` error and is closed with 1008 while the others
carry on, and chat is limited in size, in rate and in how much a consult stores."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import websockets

from server.config import LimitSettings
from tests.conftest import Api, app_config, start_api
from tests.server.dispatch_support import CREW_PASSWORD, Socket, crew_for
from tests.server.test_consult_room import CANDIDATE, join, recv, token_for
from tests.server.test_consults import accepted_consult, close_api, consult_config

FLOOD = 200


async def drain(ws: websockets.ClientConnection) -> list[dict[str, Any]]:
    """Every message until the server closes the socket."""
    received = []
    with pytest.raises(websockets.ConnectionClosed):
        while True:
            received.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
    return received


def refusals(received: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in received if m["type"] == "error"]


@pytest.fixture
async def lapi(demo_dsn: str) -> AsyncIterator[Api]:
    limits = LimitSettings(ws_ping_per_s=1.0, ws_ping_burst=5, ws_status_per_s=1.0, ws_status_burst=5)
    client = await start_api(demo_dsn, dataclasses.replace(app_config(demo_dsn), limits=limits))
    yield client
    await close_api(client)


async def test_a_socket_flooding_pings_is_told_once_and_closed_while_another_socket_is_answered(lapi: Api) -> None:
    token = await lapi.login("operator")
    flood = await Socket.open(lapi, "/ws/events", token)
    calm = await Socket.open(lapi, "/ws/events", token)
    for _ in range(FLOOD):
        await flood.ws.send('{"type": "ping"}')
    received = await drain(flood.ws)
    assert flood.ws.close_code == 1008
    errors = refusals(received)
    assert len(errors) == 1, errors
    assert errors[0]["error"]["code"] == "rate_limited" and "too many ping messages" in errors[0]["error"]["message"]
    assert 5 <= sum(m["type"] == "pong" for m in received) <= 7  # the burst, and what refilled meanwhile
    await calm.ws.send('{"type": "ping"}')
    assert (await calm.wait_for(lambda m: m["type"] == "pong"))["type"] == "pong"
    await calm.close()


async def test_a_unit_socket_flooding_refused_statuses_is_closed_too(lapi: Api, con: asyncpg.Connection) -> None:
    # Refusals used to cost a reply each, for ever: a rejected message counts against its kind like any other.
    phone = await Socket.open(lapi, "/ws/unit", await lapi.login(await crew_for(con, "ns-09"), CREW_PASSWORD))
    for _ in range(FLOOD):
        await phone.ws.send('{"type": "status", "status": "flying"}')
    received = await drain(phone.ws)
    assert phone.ws.close_code == 1008
    limited = [m for m in refusals(received) if m["error"]["code"] == "rate_limited"]
    assert len(limited) == 1 and "too many status messages" in limited[0]["error"]["message"]
    assert len(refusals(received)) <= 8  # the burst's invalid replies and the one refusal, not 200


async def room_api_with(dsn: str, var_dir: Path, **limits: Any) -> Api:
    return await start_api(dsn, dataclasses.replace(consult_config(dsn, var_dir), limits=LimitSettings(**limits)))


@pytest.fixture
async def room_api(demo_dsn: str, tmp_path: Path) -> AsyncIterator[Api]:
    client = await room_api_with(demo_dsn, tmp_path, ws_signaling_per_s=1.0, ws_signaling_burst=30, chat_max_bytes=100, chat_max_stored=10)
    yield client
    await close_api(client)


async def room(api: Api) -> tuple[str, websockets.ClientConnection, websockets.ClientConnection]:
    consult_id, pk, sp = await accepted_consult(api)
    pk_ws, _ = await join(api, consult_id, await token_for(api, consult_id, pk))
    sp_ws, _ = await join(api, consult_id, await token_for(api, consult_id, sp))
    await recv(pk_ws, "presence")
    return consult_id, pk_ws, sp_ws


async def stored_chat(con: asyncpg.Connection, consult_id: str) -> list[str]:
    return [r["text"] for r in await con.fetch("SELECT text FROM consult_chat WHERE consult_id = $1 ORDER BY id", consult_id)]


async def test_chat_over_its_size_is_refused_and_neither_stored_nor_relayed(room_api: Api, con: asyncpg.Connection) -> None:
    consult_id, pk_ws, sp_ws = await room(room_api)
    await pk_ws.send(json.dumps({"type": "chat", "id": uuid.uuid4().hex, "text": "é" * 51}))  # 51 characters, 102 bytes
    reply = await recv(pk_ws)
    assert (reply["type"], reply["code"], reply["field"]) == ("error", "invalid_message", "text")
    assert "100 bytes" in reply["message"]
    await pk_ws.send(json.dumps({"type": "chat", "id": uuid.uuid4().hex, "text": "é" * 50}))
    assert (await recv(sp_ws, "chat"))["text"] == "é" * 50  # the first chat the other side sees
    assert await stored_chat(con, consult_id) == ["é" * 50]


async def test_a_chat_flood_closes_the_socket_and_stores_no_more_than_the_burst(demo_dsn: str, tmp_path: Path, con: asyncpg.Connection) -> None:
    api = await room_api_with(demo_dsn, tmp_path, ws_chat_per_s=1.0, ws_chat_burst=5)
    try:
        consult_id, pk_ws, sp_ws = await room(api)
        for n in range(FLOOD):
            await pk_ws.send(json.dumps({"type": "chat", "id": uuid.uuid4().hex, "text": f"spam {n}"}))
        received = await drain(pk_ws)
        assert pk_ws.close_code == 1008
        errors = refusals(received)
        assert [e["code"] for e in errors] == ["rate_limited"]
        assert "too many chat messages" in errors[0]["message"]
        stored = await stored_chat(con, consult_id)
        assert 5 <= len(stored) <= 7  # the burst, and what refilled meanwhile: not the 200 sent
        relayed = 0
        with pytest.raises(TimeoutError):
            while True:
                message = json.loads(await asyncio.wait_for(sp_ws.recv(), 1))
                relayed += message["type"] == "chat"
        assert relayed == len(stored)
    finally:
        await close_api(api)


async def test_a_signaling_flood_closes_the_socket_and_the_other_member_stays(room_api: Api, con: asyncpg.Connection) -> None:
    consult_id, pk_ws, sp_ws = await room(room_api)
    for _ in range(FLOOD):
        await pk_ws.send(json.dumps({"type": "candidate", "candidate": CANDIDATE, "sdpMid": "0", "sdpMLineIndex": 0}))
    received = await drain(pk_ws)
    assert pk_ws.close_code == 1008
    assert [e["code"] for e in refusals(received)] == ["rate_limited"]
    assert "too many signaling messages" in refusals(received)[0]["message"]
    # The other member's socket is untouched: it sees the flooder leave and still talks to the room.
    assert (await recv(sp_ws, "presence"))["state"] == "left"
    await sp_ws.send(json.dumps({"type": "chat", "id": "masih-1", "text": "masih di sini"}))
    assert json.loads(await asyncio.wait_for(sp_ws.recv(), 5)) == {"type": "chat_stored", "id": "masih-1"}  # no error
    assert await stored_chat(con, consult_id) == ["masih di sini"]


async def test_stored_chat_stops_at_the_cap_even_when_both_doctors_write_at_once(room_api: Api, con: asyncpg.Connection) -> None:
    consult_id, pk_ws, sp_ws = await room(room_api)

    async def write(ws: websockets.ClientConnection, who: str) -> None:
        for n in range(8):
            await ws.send(json.dumps({"type": "chat", "id": uuid.uuid4().hex, "text": f"{who} {n}"}))

    await asyncio.gather(write(pk_ws, "pk"), write(sp_ws, "sp"))
    full = []
    for ws in (pk_ws, sp_ws):
        with pytest.raises(TimeoutError):
            while True:
                message = json.loads(await asyncio.wait_for(ws.recv(), 1))
                if message["type"] == "error":
                    full.append(message)
    stored = await stored_chat(con, consult_id)
    assert len(stored) == 10  # 16 sent, the cap is 10
    assert len(full) == 6 and {(e["code"], e["field"]) for e in full} == {("chat_full", "text")}
    assert "10 chat messages" in full[0]["message"]
    # Full chat does not close the room: signaling still flows.
    await pk_ws.send(json.dumps({"type": "candidate", "candidate": CANDIDATE, "sdpMid": "0", "sdpMLineIndex": 0}))
    assert (await recv(sp_ws, "candidate"))["candidate"] == CANDIDATE
