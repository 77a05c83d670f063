"""The signaling websocket /ws/consults/{id}: join with a token, relay with ``from`` stamped,
refusals with their close codes, bad messages that leave the room up, rejoin with the
queued messages, replaced connections, consent and the recorder hook."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
import websockets
from aiohttp import web
from aiohttp.test_utils import TestServer

from server.app import create_app
from server.config import RecordingSettings
from server.keys import RECORDER_HOOK, RECORDER_STOP_HOOK
from server.rooms import issue_recorder_token
from tests.conftest import Api, start_api
from tests.server.test_consults import OUTCOME, accepted_consult, add_users, close_api, consult_config, request_consult

SDP = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
CANDIDATE = "candidate:842163049 1 udp 2122260223 127.0.0.1 54321 typ host generation 0"


@pytest.fixture
async def capi(demo_dsn: str, tmp_path: Path) -> AsyncIterator[Api]:
    client = await start_api(demo_dsn, consult_config(demo_dsn, tmp_path, join_timeout_s=1.0))
    yield client
    await close_api(client)


def room_url(api: Api, consult_id: str) -> str:
    return api.url(f"/ws/consults/{consult_id}").replace("http://", "ws://")


async def token_for(api: Api, consult_id: str, session: str) -> str:
    status, body = await api.call("POST", f"/api/consults/{consult_id}/join", session)
    assert status == 200, body
    return str(body["token"])


async def recv(ws: websockets.ClientConnection, type: str | None = None) -> dict[str, Any]:
    """The next message (of ``type``, skipping others)."""
    while True:
        message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 5))
        if type is None or message["type"] == type:
            return message


async def join(api: Api, consult_id: str, token: str, **extra: Any) -> tuple[websockets.ClientConnection, dict[str, Any]]:
    ws = await websockets.connect(room_url(api, consult_id))
    await ws.send(json.dumps({"type": "join", "token": token, "kind": "browser", **extra}))
    welcome = await recv(ws)
    assert welcome["type"] == "welcome", welcome
    return ws, welcome


async def refused(api: Api, consult_id: str, first: str) -> tuple[dict[str, Any] | None, int]:
    """Send ``first``; the error reply (if any) and the close code."""
    async with websockets.connect(room_url(api, consult_id)) as ws:
        await ws.send(first)
        reply = None
        try:
            reply = json.loads(await asyncio.wait_for(ws.recv(), 5))
            await asyncio.wait_for(ws.recv(), 5)
        except websockets.ConnectionClosed:
            pass
        assert ws.close_code is not None
        return reply, ws.close_code


def join_text(token: str) -> str:
    return json.dumps({"type": "join", "token": token, "kind": "browser"})


async def state_of(api: Api, consult_id: str, session: str, want: str) -> str:
    for _ in range(50):
        _, body = await api.call("GET", f"/api/consults/{consult_id}", session)
        if body["consult"]["state"] == want:
            break
        await asyncio.sleep(0.05)
    return str(body["consult"]["state"])


async def me(api: Api, session: str) -> str:
    _, body = await api.call("GET", "/api/me", session)
    return str(body["id"])


async def test_whole_video_consult_relays_between_members_with_from_stamped(capi: Api) -> None:
    consult_id, pk, sp = await accepted_consult(capi)
    pk_id, sp_id = await me(capi, pk), await me(capi, sp)
    pk_ws, pk_welcome = await join(capi, consult_id, await token_for(capi, consult_id, pk))
    assert (pk_welcome["user"], pk_welcome["role"], pk_welcome["peers"]) == (pk_id, "requester", [])
    assert [s["urls"][0][:4] for s in pk_welcome["ice_servers"]] == ["stun", "turn"]
    sp_ws, sp_welcome = await join(capi, consult_id, await token_for(capi, consult_id, sp))
    assert [(p["user"], p["role"], p["offerer"]) for p in sp_welcome["peers"]] == [(pk_id, "requester", False)]
    presence = await recv(pk_ws, "presence")
    assert (presence["user"], presence["state"], presence["offerer"], presence["polite"]) == (sp_id, "joined", True, True)
    assert await state_of(capi, consult_id, pk, "in_session") == "in_session"

    # A forged "from" is overwritten; the recipient sees who really sent it.
    await pk_ws.send(json.dumps({"type": "offer", "sdp": SDP, "from": sp_id}))
    offer = await recv(sp_ws)
    assert (offer["type"], offer["from"], offer["to"], offer["consult"], offer["sdp"]) == ("offer", pk_id, sp_id, consult_id, SDP)
    await sp_ws.send(json.dumps({"type": "answer", "sdp": SDP, "from": "999"}))
    answer = await recv(pk_ws)
    assert (answer["type"], answer["from"]) == ("answer", sp_id)
    await sp_ws.send(json.dumps({"type": "candidate", "candidate": CANDIDATE, "sdpMid": "0", "sdpMLineIndex": 0}))
    candidate = await recv(pk_ws)
    assert (candidate["type"], candidate["candidate"], candidate["from"]) == ("candidate", CANDIDATE, sp_id)
    await sp_ws.send(json.dumps({"type": "candidate", "candidate": ""}))
    assert (await recv(pk_ws))["candidate"] == ""
    await pk_ws.send(json.dumps({"type": "chat", "id": uuid.uuid4().hex, "text": "EKG terlampir, mohon dibaca"}))
    chat = await recv(sp_ws)
    assert (chat["type"], chat["text"], chat["from"]) == ("chat", "EKG terlampir, mohon dibaca", pk_id)
    _, stored = await capi.call("GET", f"/api/consults/{consult_id}/chat", sp)
    assert [(m["from_user"], m["text"]) for m in stored["messages"]] == [(int(pk_id), "EKG terlampir, mohon dibaca")]

    status, body = await capi.call("POST", f"/api/consults/{consult_id}/complete", sp, json={"outcome": OUTCOME})
    assert status == 200 and body["consult"]["state"] == "completed" and body["consult"]["started_at"]
    # Completing closes the room; both sockets are closed by the server.
    for ws in (pk_ws, sp_ws):
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                await asyncio.wait_for(ws.recv(), 5)
        assert ws.close_code == 4409  # final: the consult is over, peers do not rejoin
    admin = await capi.login("admin")
    _, log = await capi.call("GET", f"/api/audit?object=consult:{consult_id}", admin)
    assert {(e["action"], e["username"]) for e in log["entries"]} >= {
        ("consult.chat", "puskesmas"), ("consult.chat.read", "specialist"), ("consult.read", "puskesmas"),
        ("consult.in_session", "signaling"),
    }


async def test_refusals_send_an_error_then_close_with_their_code(capi: Api) -> None:
    consult_id, pk, sp = await accepted_consult(capi)
    # Another consult, with a third doctor as its specialist.
    [other_sp] = await add_users(capi.dsn, "lain", 1)
    other_session = await capi.login(other_sp, "demo119x")
    _, body = await request_consult(capi, pk)
    other_id = body["consult"]["id"]
    assert (await capi.call("POST", f"/api/consults/{other_id}/accept", other_session))[0] == 200
    outsider_token = await token_for(capi, other_id, other_session)
    pk_other_token = await token_for(capi, other_id, pk)

    reply, code = await refused(capi, consult_id, join_text(outsider_token))
    assert (reply and reply["code"], code) == ("not_a_member", 4403)
    reply, code = await refused(capi, consult_id, join_text(pk_other_token))  # a member, with another room's token
    assert (reply and reply["code"], reply and reply["field"], code) == ("token_rejected", "token", 4401)
    reply, code = await refused(capi, consult_id, join_text("A" * 43))
    assert (reply and reply["code"], code) == ("token_rejected", 4401)
    reply, code = await refused(capi, consult_id, json.dumps({"type": "chat", "id": uuid.uuid4().hex, "text": "halo"}))
    assert (reply and reply["code"], reply and reply["field"], code) == ("invalid_message", "type", 4400)
    reply, code = await refused(capi, consult_id, "{not json")
    assert (reply and reply["code"], code) == ("invalid_message", 4400)
    # Silence: closed after consult.join_timeout_s.
    async with websockets.connect(room_url(capi, consult_id)) as ws:
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
        assert ws.close_code == 4408
    # A token from before the consult ended opens nothing afterwards.
    pk_token = await token_for(capi, consult_id, pk)
    assert (await capi.call("POST", f"/api/consults/{consult_id}/complete", sp, json={"outcome": OUTCOME}))[0] == 200
    reply, code = await refused(capi, consult_id, join_text(pk_token))
    assert (reply and reply["code"], code) == ("room_closed", 4409)
    assert (await capi.call("POST", f"/api/consults/{consult_id}/join", pk))[0] == 409


async def test_a_join_after_the_consult_ended_is_refused_before_its_event_arrives(capi: Api) -> None:
    """Another process may end the consult in the database before its event reaches this one:
    the join is refused from the database, and the room it finds still open is closed."""
    consult_id, pk, sp = await accepted_consult(capi)
    sp_ws, _ = await join(capi, consult_id, await token_for(capi, consult_id, sp))
    pk_token = await token_for(capi, consult_id, pk)
    # The change without its event: as if the bus had not delivered it yet.
    con = await asyncpg.connect(capi.dsn)
    try:
        await con.execute("UPDATE consults SET state = 'cancelled', ended_at = now() WHERE id = $1", uuid.UUID(consult_id))
    finally:
        await con.close()
    reply, code = await refused(capi, consult_id, join_text(pk_token))
    assert (reply and reply["code"], code) == ("room_closed", 4409)
    with pytest.raises(websockets.ConnectionClosed):
        while True:
            await asyncio.wait_for(sp_ws.recv(), 5)
    assert sp_ws.close_code == 4409


async def test_a_chat_after_the_consult_ended_is_refused_before_its_event_arrives(capi: Api) -> None:
    """Another process may end the consult in the database before its event reaches this one: a chat is then
    refused from the database (nothing stored), and the room it finds still open is closed."""
    consult_id, pk, sp = await accepted_consult(capi)
    pk_ws, _ = await join(capi, consult_id, await token_for(capi, consult_id, pk))
    sp_ws, _ = await join(capi, consult_id, await token_for(capi, consult_id, sp))
    await pk_ws.send(json.dumps({"type": "chat", "id": uuid.uuid4().hex, "text": "EKG terkirim"}))
    assert (await recv(sp_ws, "chat"))["from"] == await me(capi, pk)
    con = await asyncpg.connect(capi.dsn)
    try:
        # The change without its event: as if the bus had not delivered it yet.
        await con.execute("UPDATE consults SET state = 'cancelled', ended_at = now() WHERE id = $1", uuid.UUID(consult_id))
        await pk_ws.send(json.dumps({"type": "chat", "id": uuid.uuid4().hex, "text": "masih di sana?"}))
        reply = await recv(pk_ws, "error")
        assert (reply["code"], reply["field"]) == ("room_closed", "state")
        for ws in (pk_ws, sp_ws):
            with pytest.raises(websockets.ConnectionClosed):
                while True:
                    assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] != "chat"
            assert ws.close_code == 4409
        texts = await con.fetch("SELECT text FROM consult_chat WHERE consult_id = $1", uuid.UUID(consult_id))
        assert [t["text"] for t in texts] == ["EKG terkirim"]
    finally:
        await con.close()


async def test_bad_and_misaddressed_messages_get_errors_and_the_room_survives(capi: Api) -> None:
    consult_id, pk, sp = await accepted_consult(capi)
    _, body = await request_consult(capi, pk)
    other_id = body["consult"]["id"]
    pk_ws, _ = await join(capi, consult_id, await token_for(capi, consult_id, pk))
    sp_ws, _ = await join(capi, consult_id, await token_for(capi, consult_id, sp))
    await recv(pk_ws, "presence")
    cases = [
        (json.dumps({"type": "chat", "id": uuid.uuid4().hex, "text": "x" * (100 * 1024)}), "invalid_message", None),  # over the 96 KB cap
        (json.dumps({"type": "offer", "sdp": "v=0\r\n" + "a=x\r\n" * 14000}), "invalid_message", "sdp"),
        ("not json at all", "invalid_message", None),
        (json.dumps({"type": "launch"}), "invalid_message", "type"),
        (json.dumps({"type": "offer", "sdp": "hello"}), "invalid_message", "sdp"),
        (json.dumps({"type": "candidate", "candidate": "candidate:1 1 udp 1 127.0.0.1 99999 typ host", "sdpMid": "0"}),
         "invalid_message", "candidate"),
        (json.dumps({"type": "chat", "id": uuid.uuid4().hex, "text": "ke ruang lain", "consult": other_id}), "wrong_room", "consult"),
        (json.dumps({"type": "chat", "id": uuid.uuid4().hex, "text": "siapa?", "to": "31337"}), "not_a_member", "to"),
        (json.dumps({"type": "welcome"}), "invalid_message", None),
        (join_text("A" * 43), "invalid_message", "type"),
    ]
    for text, code, field in cases:
        await pk_ws.send(text)
        reply = await recv(pk_ws)
        assert (reply["type"], reply["code"]) == ("error", code), (text[:80], reply)
        if field is not None:
            assert reply["field"] == field, (text[:80], reply)
    # Still connected, still relaying, and nothing bad reached the other side.
    await pk_ws.send(json.dumps({"type": "chat", "id": uuid.uuid4().hex, "text": "masih di sini"}))
    assert (await recv(sp_ws))["text"] == "masih di sini"
    await pk_ws.close()
    await sp_ws.close()


async def test_a_member_who_drops_and_rejoins_gets_the_queued_chat(capi: Api) -> None:
    consult_id, pk, sp = await accepted_consult(capi)
    sp_id = await me(capi, sp)
    pk_ws, _ = await join(capi, consult_id, await token_for(capi, consult_id, pk))
    sp_token = await token_for(capi, consult_id, sp)
    sp_ws, first = await join(capi, consult_id, sp_token)
    assert (await recv(pk_ws, "presence"))["state"] == "joined"
    await sp_ws.close()
    left = await recv(pk_ws, "presence")
    assert (left["user"], left["state"]) == (sp_id, "left")
    await pk_ws.send(json.dumps({"type": "candidate", "candidate": CANDIDATE, "sdpMid": "0"}))
    await pk_ws.send(json.dumps({"type": "chat", "id": uuid.uuid4().hex, "text": "dokter, sambungan putus?"}))
    await asyncio.sleep(0.1)
    # The same token again: a reconnect.
    sp_ws, again = await join(capi, consult_id, sp_token)
    assert again["generation"] == first["generation"] + 1
    # The chat waited; the candidate belonged to the old connection's negotiation and was dropped.
    backlog = await recv(sp_ws)
    assert (backlog["type"], backlog.get("text")) == ("chat", "dokter, sambungan putus?")
    joined = await recv(pk_ws, "presence")
    assert (joined["user"], joined["state"], joined["generation"]) == (sp_id, "joined", again["generation"])
    await pk_ws.close()
    await sp_ws.close()


async def test_a_second_connection_of_a_member_replaces_the_first(capi: Api) -> None:
    consult_id, pk, sp = await accepted_consult(capi)
    pk_ws, _ = await join(capi, consult_id, await token_for(capi, consult_id, pk))
    sp_token = await token_for(capi, consult_id, sp)
    old, _ = await join(capi, consult_id, sp_token)
    await recv(pk_ws, "presence")
    new, _ = await join(capi, consult_id, sp_token, kind="aiortc")
    with pytest.raises(websockets.ConnectionClosed):
        while True:
            await asyncio.wait_for(old.recv(), 5)
    assert (old.close_code, old.close_reason) == (4000, "replaced")
    presence = await recv(pk_ws, "presence")
    assert (presence["state"], presence["kind"]) == ("joined", "aiortc")
    # The new connection works; the replaced one left no "left" behind it.
    await pk_ws.send(json.dumps({"type": "chat", "id": uuid.uuid4().hex, "text": "halo lagi"}))
    assert (await recv(new, "chat"))["text"] == "halo lagi"
    await new.send(json.dumps({"type": "chat", "id": uuid.uuid4().hex, "text": "ya"}))
    assert (await recv(pk_ws, "chat"))["text"] == "ya"
    await pk_ws.close()
    await new.close()


async def test_consent_from_both_doctors_starts_the_recorder_and_withdrawal_stops_it(demo_dsn: str, tmp_path: Path) -> None:
    recorders: dict[str, websockets.ClientConnection] = {}
    welcomed = asyncio.Event()
    stopped = asyncio.Event()

    async def start(app: web.Application, consult_id: str) -> None:
        # What the real recorder does first: a recorder token, then join as an aiortc peer.
        token = await issue_recorder_token(app, consult_id)
        ws = await websockets.connect(room_url(client, consult_id))
        await ws.send(json.dumps({"type": "join", "token": token, "kind": "aiortc"}))
        welcome = await recv(ws)
        assert (welcome["type"], welcome["role"]) == ("welcome", "recorder")
        recorders[consult_id] = ws
        welcomed.set()

    async def stop(app: web.Application, consult_id: str) -> None:
        await recorders.pop(consult_id).close()
        stopped.set()

    async def hooks(app: web.Application) -> AsyncIterator[None]:
        # Installed last, in place of the real recorder: this test is about when the hub calls them.
        app[RECORDER_HOOK] = start
        app[RECORDER_STOP_HOOK] = stop
        yield

    app = create_app(consult_config(demo_dsn, tmp_path), demo_dsn)
    app.cleanup_ctx.append(hooks)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    client = Api(server, aiohttp.ClientSession(), demo_dsn)
    try:
        consult_id, pk, sp = await accepted_consult(client)
        pk_ws, welcome = await join(client, consult_id, await token_for(client, consult_id, pk), consent_recording=True)
        assert welcome["recording_allowed"] is False
        # Without every doctor's consent the recorder cannot get in.
        token = await issue_recorder_token(client.server.app, consult_id)
        reply, code = await refused(client, consult_id, json.dumps({"type": "join", "token": token, "kind": "aiortc"}))
        assert (reply and reply["code"], code) == ("recording_not_allowed", 4403)
        sp_ws, _ = await join(client, consult_id, await token_for(client, consult_id, sp))
        assert (await recv(pk_ws, "presence"))["role"] == "specialist"
        await sp_ws.send(json.dumps({"type": "consent", "recording": True}))
        assert (await recv(pk_ws, "recording"))["allowed"] is True
        assert (await recv(sp_ws, "recording"))["allowed"] is True
        await asyncio.wait_for(welcomed.wait(), 5)
        assert (await recv(pk_ws, "presence"))["role"] == "recorder"
        await pk_ws.send(json.dumps({"type": "consent", "recording": False}))
        assert (await recv(sp_ws, "recording"))["allowed"] is False
        await asyncio.wait_for(stopped.wait(), 5)
        left = await recv(sp_ws, "presence")
        assert (left["role"], left["state"]) == ("recorder", "left")
        admin = await client.login("admin")
        _, log = await client.call("GET", f"/api/audit?action=consult.consent&object=consult:{consult_id}", admin)
        assert sorted((e["username"], e["detail"]["recording"]) for e in log["entries"]) == [
            ("puskesmas", False), ("puskesmas", True), ("specialist", True),
        ]
        await pk_ws.close()
        await sp_ws.close()
    finally:
        await close_api(client)


async def test_unknown_consult_room_is_closed(capi: Api) -> None:
    reply, code = await refused(capi, str(uuid.uuid4()), join_text("A" * 43))
    assert (reply and reply["code"], code) == ("token_rejected", 4401)


async def test_a_new_process_rebuilds_the_room_from_the_database(demo_dsn: str, tmp_path: Path) -> None:
    # No real recorder: this test is about the room's state, not about media.
    config = dataclasses.replace(consult_config(demo_dsn, tmp_path), recording=RecordingSettings(enabled=False))
    first = await start_api(demo_dsn, config)
    try:
        consult_id, pk, sp = await accepted_consult(first)
        pk_token, sp_token = await token_for(first, consult_id, pk), await token_for(first, consult_id, sp)
        pk_ws, _ = await join(first, consult_id, pk_token, consent_recording=True)
        await pk_ws.close()
    finally:
        await close_api(first)
    second = await start_api(demo_dsn, config)
    try:
        # The grants and the consent were stored: the same tokens work in the new process.
        pk_ws, welcome = await join(second, consult_id, pk_token)
        assert welcome["generation"] == 1 and welcome["recording_allowed"] is False
        sp_ws, welcome = await join(second, consult_id, sp_token, consent_recording=True)
        assert welcome["recording_allowed"] is True  # the requester's consent survived the restart
        assert await state_of(second, consult_id, pk, "in_session") == "in_session"
        await pk_ws.close()
        await sp_ws.close()
    finally:
        await close_api(second)
