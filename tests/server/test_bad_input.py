"""Input no handler should ever see: NUL characters, lone surrogates, JSON nested a thousand deep,
dates outside the calendar, booleans for numbers. Every route and socket answers 400/422 naming
the field (an error reply, or an error then close 4400 for a room join), and nothing changes."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from server.demo_region import DEMO_PASSWORD
from server.keys import ENDPOINTS
from server.roles import PUBLIC, Role
from tests.conftest import Api, start_api
from tests.server.dispatch_support import CREW_PASSWORD, Socket, call_body, crew_for
from tests.server.process_support import Remote, Served, cli_env
from tests.server.test_consult_room import join, recv, refused, token_for
from tests.server.test_consults import PATIENT, accepted_consult, close_api, consult_config

SURROGATE = "\udc80"  # json.dumps writes it as the escape \udc80, as a client would
DEEP = '{"a":' * 1000 + "1" + "}" * 1000
TABLES = ("incidents", "events", "assignments", "consults", "consult_chat", "consult_consents", "units",
          "triage_types", "audit_log", "users", "oncall", "unit_status_log")
USERS = {Role.OPERATOR: "operator", Role.ADMIN: "admin", Role.PUSKESMAS: "puskesmas", Role.SPECIALIST: "specialist",
         Role.HOSPITAL: "hospital"}


@pytest.fixture
async def capi(demo_dsn: str, tmp_path: Path) -> AsyncIterator[Api]:
    client = await start_api(demo_dsn, consult_config(demo_dsn, tmp_path, join_timeout_s=1.0))
    yield client
    await close_api(client)


async def snapshot(con: asyncpg.Connection) -> dict[str, str]:
    """Every row of the tables a request could change, as one digest per table."""
    return {t: await con.fetchval(f"SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) FROM {t} t") for t in TABLES}


def raw(body: Any) -> bytes:
    return json.dumps(body).encode()


async def send(api: Api, method: str, path: str, token: str | None, data: bytes | None = None, **headers: str) -> tuple[int, Any]:
    if data is not None:
        headers["Content-Type"] = "application/json"
    return await api.call(method, path, token, data=data, headers=headers)


UNIT = {"id": "ns-99", "callsign": "NS 99", "kind": "ambulance", "base_lat": -6.3, "base_lon": 106.7}
CALL_TYPE = {"label_id": "Sesak", "label_en": "Breathless", "priority": "kuning"}
CONSULT = {"idempotency_key": "bad-input-0001", "service": "tele_ekg", "specialty": "jantung", "urgency": "emergency", "patient": PATIENT}

# (role or None for anonymous, method, path, JSON body or None, status, field named)
CASES = [
    ("operator", "POST", "/api/calls", call_body(complaint="nyeri\x00dada"), 422, "complaint"),
    ("admin", "POST", "/api/units", {**UNIT, "callsign": "NS\x0099"}, 422, "callsign"),
    ("admin", "PUT", "/api/triage/sesak", {**CALL_TYPE, "label_id": "Ses\x00ak"}, 422, "label_id"),
    ("admin", "PUT", "/api/triage/sesak", {**CALL_TYPE, "label_en": "Breath\x00less"}, 422, "label_en"),
    (None, "POST", "/api/auth/login", {"username": "oper\x00ator", "password": "x"}, 422, "username"),
    ("puskesmas", "POST", "/api/consults", {**CONSULT, "idempotency_key": "bad-\x00-input-01"}, 422, "idempotency_key"),
    ("operator", "GET", "/api/incidents?kecamatan=pamu%00lang", None, 422, "kecamatan"),
    ("admin", "GET", "/api/audit?action=%00", None, 422, "action"),
    ("operator", "GET", "/api/incidents/abc%00def", None, 422, "id"),
    (None, "GET", "/index.html%00.png", None, 422, "path"),
    (None, "GET", "/" + "a" * 300, None, 404, "path"),
    ("puskesmas", "POST", "/api/consults", {**CONSULT, "patient": {**PATIENT, "chief_complaint": "nyeri" + SURROGATE}}, 422,
     "patient.chief_complaint"),
    ("operator", "POST", "/api/calls", call_body(complaint="nyeri " + SURROGATE), 422, "complaint"),
    ("operator", "POST", "/api/calls", call_body(location={"lat": True, "lon": 106.7}), 422, "location.lat"),
    ("admin", "POST", "/api/units", {**UNIT, "base_lon": True}, 422, "base_lon"),
    ("operator", "GET", "/api/incidents?since=0001-01-01T00:00:00%2B14:00", None, 422, "since"),
    ("operator", "GET", "/api/metrics?until=9999-12-31T23:59:59-14:00", None, 422, "until"),
    ("admin", "GET", "/api/audit?since=0001-01-01T00:00:00%2B14:00", None, 422, "since"),
    ("operator", "GET", "/api/incidents?since=1700000000", None, 422, "since"),
    ("admin", "GET", "/api/audit?before_id=99999999999999999999", None, 422, "before_id"),
    ("puskesmas", "POST", "/api/consults", {**CONSULT, "patient": {**PATIENT, "age": 10**20}}, 422, "patient.age"),
    ("operator", "POST", "/api/incidents/00000000-0000-0000-0000-000000000000/assignments/%C2%B2/cancel", None, 404, "assignment_id"),
    ("operator", "GET", "/ws/events?after=%C2%B2", None, 422, "after"),
]


@pytest.mark.parametrize("role,method,path,body,status,field", CASES, ids=[f"{c[1]} {c[2][:40]} {c[5]}" for c in CASES])
async def test_bad_text_numbers_and_dates_are_refused_naming_the_field(
    capi: Api, con: asyncpg.Connection, role: str | None, method: str, path: str, body: Any, status: int, field: str,
) -> None:
    token = await capi.login(role) if role else None
    before = await snapshot(con)
    got, reply = await send(capi, method, path, token, None if body is None else raw(body))
    assert (got, reply["error"]["field"]) == (status, field), reply
    assert await snapshot(con) == before


async def test_a_nul_in_the_socket_token_is_refused_before_any_lookup(capi: Api, con: asyncpg.Connection) -> None:
    before = await snapshot(con)
    status, reply = await capi.call("GET", "/ws/events?token=abc%00", headers={"Upgrade": "websocket", "Connection": "Upgrade"})
    assert (status, reply["error"]["field"]) == (422, "token")
    assert await snapshot(con) == before


@pytest.mark.parametrize("value", [b"Bearer abc\xff\xfe", b"Bearer \xed\xa0\x80"])
async def test_a_token_header_that_is_not_utf8_is_refused_naming_it(capi: Api, con: asyncpg.Connection, value: bytes) -> None:
    before = await snapshot(con)
    reader, writer = await asyncio.open_connection(capi.server.host, capi.server.port)
    writer.write(b"GET /api/me HTTP/1.1\r\nHost: x\r\nAuthorization: " + value + b"\r\nConnection: close\r\n\r\n")
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 422 ") and json.loads(body)["error"]["field"] == "Authorization", answer
    assert await snapshot(con) == before


async def test_json_nested_a_thousand_deep_is_refused_by_every_body_route(capi: Api, con: asyncpg.Connection) -> None:
    incident = (await send(capi, "POST", "/api/calls", await capi.login("operator"), raw(call_body())))[1]["incident"]["id"]
    tokens = {role: await capi.login(name) for role, name in USERS.items()}
    routes = [e for e in capi.server.app[ENDPOINTS] if e.body is not None]
    assert len(routes) >= 15
    before = await snapshot(con)
    for e in routes:
        path = e.path.replace("{id}", incident).replace("{code}", "chest_pain")
        token = None if e.roles == PUBLIC else tokens[next(r for r in USERS if r in e.roles)]
        status, reply = await send(capi, e.method, path, token, DEEP.encode())
        assert (status, reply["error"]["code"], reply["error"]["field"]) == (400, "bad_request", "a"), (e.method, e.path, reply)
        assert "32 levels" in reply["error"]["message"]
    assert await snapshot(con) == before


@pytest.mark.parametrize("path,user", [("/ws/events", "operator"), ("/ws/operator", "operator"), ("/ws/unit", None)])
async def test_live_sockets_answer_deep_and_invalid_text_with_an_error_and_stay_up(
    capi: Api, con: asyncpg.Connection, path: str, user: str | None,
) -> None:
    name = user or await crew_for(con, "ns-01")
    token = await capi.login(name, DEMO_PASSWORD if user else CREW_PASSWORD)
    socket = await Socket.open(capi, path, token)
    try:
        before = await snapshot(con)
        await socket.ws.send(DEEP)
        error = await socket.wait_for(lambda m: m.get("type") == "error")
        assert (error["error"]["code"], error["error"]["field"]) == ("bad_request", "a") and "32 levels" in error["error"]["message"]
        await socket.ws.send(json.dumps({"type": "ping", "ref": "r1", "note": "sesak" + SURROGATE}))
        error = await socket.wait_for(lambda m: m.get("type") == "error")
        assert error["error"]["field"] == "note"
        await socket.ws.send(json.dumps({"type": "ping", "ref": "r\x00"}))
        error = await socket.wait_for(lambda m: m.get("type") == "error")
        assert error["error"]["field"] == "ref"
        assert await snapshot(con) == before
        if path == "/ws/unit":
            await socket.ws.send(json.dumps({"type": "position", "ref": "r2", "lat": True, "lon": 106.7}))
            error = await socket.wait_for(lambda m: m.get("type") == "error")
            assert error["error"]["field"] == "lat"
            await socket.ws.send(json.dumps({"type": "ack", "ref": "r3", "assignment_id": 2**64}))
            error = await socket.wait_for(lambda m: m.get("type") == "error")
            assert error["error"]["field"] == "assignment_id"
        await socket.ws.send(json.dumps({"type": "ping", "ref": "alive"}))
        assert (await socket.wait_for(lambda m: m.get("type") == "pong"))["type"] == "pong"
    finally:
        await socket.close()


@pytest.mark.parametrize("first,field", [
    (DEEP, "a"),
    ('{"type": "join", "token": "' + "a" * 20 + '\\udc80", "kind": "browser"}', "token"),
    ('{"type": "join", "token": "' + "a" * 20 + '\\u0000", "kind": "browser"}', "token"),
])
async def test_a_bad_room_join_gets_an_error_then_close_4400(capi: Api, con: asyncpg.Connection, first: str, field: str) -> None:
    consult_id, _, _ = await accepted_consult(capi)
    before = await snapshot(con)
    reply, code = await refused(capi, consult_id, first)
    assert reply is not None and reply["type"] == "error" and reply["field"] == field, reply
    assert code == 4400
    assert await snapshot(con) == before


async def test_a_lone_surrogate_in_chat_is_refused_and_the_room_stays_up(capi: Api, con: asyncpg.Connection) -> None:
    consult_id, pk, sp = await accepted_consult(capi)
    pk_ws, _ = await join(capi, consult_id, await token_for(capi, consult_id, pk))
    sp_ws, _ = await join(capi, consult_id, await token_for(capi, consult_id, sp))
    await recv(pk_ws, "presence")
    await state_of_session(con, consult_id)
    before = await snapshot(con)
    await pk_ws.send(json.dumps({"type": "chat", "id": uuid.uuid4().hex, "text": "tekanan darah " + SURROGATE}))
    error = await recv(pk_ws, "error")
    assert error["field"] == "text"
    await pk_ws.send(DEEP)
    error = await recv(pk_ws, "error")
    assert error["field"] == "a" and "32 levels" in error["message"]
    assert await snapshot(con) == before
    await pk_ws.send(json.dumps({"type": "chat", "id": uuid.uuid4().hex, "text": "masih di sini"}))
    assert (await recv(sp_ws, "chat"))["text"] == "masih di sini"
    await pk_ws.close()
    await sp_ws.close()


async def state_of_session(con: asyncpg.Connection, consult_id: str) -> None:
    """Wait for the state change both joins cause, so the snapshot is taken after it."""
    for _ in range(100):
        if await con.fetchval("SELECT state FROM consults WHERE id = $1::uuid", consult_id) == "in_session":
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the consult never went in session")


async def test_an_unexpected_error_is_logged_without_the_patient_data_it_carried(demo_dsn: str, tmp_path: Path) -> None:
    # A real fault: the column changed type under the running server, so the insert fails
    # with a message that quotes the caller's name.
    name, complaint = "Siti Rahmawati Lubis", "sesak napas sejak subuh"
    served = await Served.start(["serve", "--port", "0"], cli_env(demo_dsn), tmp_path / "serve.log")
    try:
        con = await asyncpg.connect(demo_dsn)
        try:
            await con.execute("ALTER TABLE incidents ALTER COLUMN caller_name TYPE integer USING NULL")
        finally:
            await con.close()
        async with aiohttp.ClientSession() as session:
            api = Remote(None, session, demo_dsn, base=served.url)  # type: ignore[arg-type]
            token = await api.login("operator")
            async with session.post(f"{served.url}/api/calls", json=call_body(caller_name=name, complaint=complaint),
                                    headers={"Authorization": f"Bearer {token}"}) as r:
                assert r.status == 500
    finally:
        await served.terminate()
    log = (tmp_path / "serve.log").read_text()
    assert "unhandled error in POST /api/calls" in log and "(message withheld)" in log
    assert "Siti" not in log and "Rahmawati" not in log and "sesak" not in log
