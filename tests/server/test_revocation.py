"""A revoked or expired session closes every socket it opened, on every server process, with 4401:
live sockets (/ws/unit, /ws/operator, /ws/events) and room sockets (through the session that asked for
the join token); nothing committed after the revocation reaches them, and their tokens open nothing."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import gc
import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
import websockets

from server.bus import LISTENER_NAME
from server.events import Event
from server.keys import REVOCATIONS
from server.revocation import CLOSE_SESSION_ENDED, EVENT, EXPIRED, REVOKED, Revocations
from tests.conftest import Api
from tests.server.dispatch_support import CREW_PASSWORD, Socket, call_body, crew_for, socket_url
from tests.server.process_support import Remote, Served, cli_env, psc119
from tests.server.test_consult_room import join, join_text, recv, refused, room_url, token_for
from tests.server.test_consults import accepted_consult, add_users


@dataclasses.dataclass
class Watched:
    """A socket whose every message is kept until it closes."""

    name: str
    ws: websockets.ClientConnection
    received: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    closed_at: float | None = None

    def __post_init__(self) -> None:
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for text in self.ws:
                self.received.append(json.loads(text))
        except websockets.ConnectionClosed:
            pass
        self.closed_at = time.monotonic()

    async def closed(self, within: float) -> tuple[int | None, str | None]:
        """The close code and reason; TimeoutError if it is still open after ``within`` seconds."""
        await asyncio.wait_for(asyncio.shield(self.task), within)
        return self.ws.close_code, self.ws.close_reason

    def events(self, type: str) -> list[dict[str, Any]]:
        return [m for m in self.received if m.get("type") == "event" and m["event"] == type]


async def live(api: Api, path: str, token: str, name: str) -> Watched:
    socket = await Socket.open(api, path, token)
    return Watched(name, socket.ws)


@dataclasses.dataclass
class Scene:
    """Sockets of every kind on both processes, opened by four sessions (crew, operator and the two doctors)."""

    sockets: list[Watched]
    dispatcher: str  # a session that lives on, with a console on b
    console: Socket
    tokens: dict[str, str]  # session tokens by user
    join_tokens: dict[str, str]  # the doctors' room join tokens
    users: dict[str, str]
    consult_id: str
    incident_id: str
    unit_id: str


DISPATCHER = "dispatcher0"  # an operator whose session never ends here: it dispatches and watches after


async def set_scene(a: Api, b: Api, con: asyncpg.Connection) -> Scene:
    await add_users(a.dsn, "dispatcher", 1, role="operator")
    dispatcher = await a.login(DISPATCHER, "demo119x")
    status, created = await a.call("POST", "/api/calls", dispatcher, json=call_body())
    assert status == 201, created
    unit_id = created["recommendations"][0]["unit_id"]
    crew_user = await crew_for(con, unit_id)
    crew = await a.login(crew_user, CREW_PASSWORD)
    operator = await b.login("operator")
    consult_id, pk, sp = await accepted_consult(a)
    sockets = [
        await live(a, "/ws/unit", crew, "unit on a"), await live(b, "/ws/unit", crew, "unit on b"),
        await live(a, "/ws/events", crew, "events on a"), await live(b, "/ws/events", crew, "events on b"),
        await live(a, "/ws/operator", operator, "console on a"), await live(b, "/ws/operator", operator, "console on b"),
    ]
    joins = {"puskesmas": await token_for(a, consult_id, pk), "specialist": await token_for(b, consult_id, sp)}
    pk_ws, _ = await join(a, consult_id, joins["puskesmas"])  # a holds the room
    sp_ws, _ = await join(b, consult_id, joins["specialist"])  # b relays to a
    await recv(pk_ws, "presence")
    sockets += [Watched("room on a", pk_ws), Watched("room relayed by b", sp_ws)]
    return Scene(
        sockets, dispatcher, await Socket.open(b, "/ws/operator", dispatcher),
        {"crew": crew, "operator": operator, "puskesmas": pk, "specialist": sp}, joins,
        {"crew": crew_user, "operator": "operator", "puskesmas": "puskesmas", "specialist": "specialist"},
        consult_id, created["incident"]["id"], unit_id,
    )


async def all_closed(scene: Scene, reason: str, since: float) -> None:
    """Every socket of the scene closed with 4401 and ``reason``, within 1 s of ``since``; none got a dispatch."""
    results = await asyncio.gather(*(w.closed(10) for w in scene.sockets), return_exceptions=True)
    seen = {w.name: r if isinstance(r, tuple) else type(r).__name__ for w, r in zip(scene.sockets, results, strict=True)}
    assert seen == {w.name: (CLOSE_SESSION_ENDED, reason) for w in scene.sockets}
    late = {w.name: round(w.closed_at - since, 3) for w in scene.sockets if w.closed_at is not None and w.closed_at - since > 1.0}
    assert late == {}
    # Read to the end now: nothing committed after the end was delivered, even while the sockets closed.
    assert {w.name: w.events("unit.dispatched") for w in scene.sockets} == {w.name: [] for w in scene.sockets}


async def nothing_after(scene: Scene, a: Api, b: Api, con: asyncpg.Connection) -> None:
    """A dispatch made right after the end (whether or not the sockets have closed yet) reaches a live console
    only; the dead sessions reach and change nothing."""
    status, body = await a.call("POST", f"/api/incidents/{scene.incident_id}/dispatch", scene.dispatcher, json={"unit_id": scene.unit_id})
    assert status == 201, body
    await scene.console.event("unit.dispatched", unit_id=scene.unit_id)
    await scene.console.close()
    for api in (a, b):
        for who, path in (("crew", "/ws/unit"), ("operator", "/ws/events")):
            with pytest.raises(websockets.InvalidStatus) as handshake:
                await websockets.connect(socket_url(api, path, scene.tokens[who]))
            assert handshake.value.response.status_code == 401
        # The join tokens died with the sessions that asked for them.
        for token in scene.join_tokens.values():
            reply, code = await refused(api, scene.consult_id, join_text(token))
            assert (reply and reply["code"], code) == ("token_rejected", CLOSE_SESSION_ENDED)
    assert await con.fetchval("SELECT acknowledged_at FROM assignments WHERE id = $1", body["assignment"]["id"]) is None
    assert await con.fetchval("SELECT count(*) FROM consult_chat WHERE consult_id = $1", uuid.UUID(scene.consult_id)) == 0


@pytest.fixture
async def processes(demo_dsn: str, tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[tuple[Remote, Remote]]:
    """Two real ``psc119 serve`` processes on one database (``request.param``: more environment)."""
    env = {**cli_env(demo_dsn), "PSC119_SERVER_VAR_DIR": str(tmp_path), **getattr(request, "param", {})}
    servers: list[Served] = []
    session = aiohttp.ClientSession()
    try:
        for n in range(2):
            servers.append(await Served.start(["serve", "--port", "0"], env, tmp_path / f"serve{n}.log"))
        a, b = (Remote(None, session, demo_dsn, base=s.url) for s in servers)  # type: ignore[arg-type]
        yield a, b
    finally:
        await session.close()
        for server in servers:
            await server.kill()


async def test_logout_on_one_process_closes_the_sessions_sockets_on_both(
    processes: tuple[Remote, Remote], con: asyncpg.Connection
) -> None:
    a, b = processes
    scene = await set_scene(a, b, con)
    # Another session of the same crew stays: a logout ends one session, not the user's.
    other = await Socket.open(b, "/ws/unit", await b.login(scene.users["crew"], CREW_PASSWORD))
    replies = await asyncio.gather(*(a.call("POST", "/api/auth/logout", token) for token in scene.tokens.values()))
    assert [status for status, _ in replies] == [200] * 4
    revoked_at = time.monotonic()
    await nothing_after(scene, a, b, con)
    await all_closed(scene, REVOKED, since=revoked_at)
    await other.event("unit.dispatched", unit_id=scene.unit_id)
    await other.close()


async def test_user_disable_by_the_cli_closes_every_socket_of_the_user(
    processes: tuple[Remote, Remote], con: asyncpg.Connection, demo_dsn: str
) -> None:
    a, b = processes
    scene = await set_scene(a, b, con)
    done = await asyncio.gather(*(psc119("user", "disable", name, env=cli_env(demo_dsn)) for name in scene.users.values()))
    assert [d.code for d in done] == [0] * 4, [d.err for d in done]
    revoked_at = time.monotonic()  # at the latest
    await nothing_after(scene, a, b, con)
    await all_closed(scene, REVOKED, since=revoked_at)


TTL_S = 9.0


@pytest.mark.parametrize("processes", [{"PSC119_AUTH_SESSION_TTL_H": str(TTL_S / 3600)}], indirect=True)
async def test_expired_sessions_close_their_sockets_on_both_processes(
    processes: tuple[Remote, Remote], con: asyncpg.Connection
) -> None:
    a, b = processes
    first_login = time.monotonic()
    scene = await set_scene(a, b, con)
    last_login = time.monotonic()
    assert last_login - first_login < TTL_S - 1, "the scene took too long to set"
    await asyncio.gather(*(w.closed(last_login + TTL_S + 5 - time.monotonic()) for w in scene.sockets), return_exceptions=True)
    scene.dispatcher = await a.login(DISPATCHER, "demo119x")  # its session expired too
    scene.console = await Socket.open(b, "/ws/operator", scene.dispatcher)
    await nothing_after(scene, a, b, con)
    await all_closed(scene, EXPIRED, since=last_login + TTL_S)  # each session expires by then
    for watched in scene.sockets:
        assert watched.closed_at is not None and watched.closed_at >= first_login + TTL_S - 0.5, watched.name


async def test_a_role_or_unit_change_revokes_and_a_change_is_refused_before_the_event_arrives(api: Api, con: asyncpg.Connection) -> None:
    status, created = await api.call("POST", "/api/calls", await api.login("operator"), json=call_body())
    unit_id, spare = (r["unit_id"] for r in created["recommendations"][:2])
    crew_user = await crew_for(con, unit_id)
    phone = await live(api, "/ws/unit", await api.login(crew_user, CREW_PASSWORD), "phone")
    await con.execute("UPDATE users SET unit_id = $2 WHERE username = $1", crew_user, spare)
    assert await phone.closed(1.0) == (CLOSE_SESSION_ENDED, REVOKED)

    # A revocation this process has not seen yet (triggers off: no event at all) still stops an ack: it
    # re-reads the session, is refused, and the socket closes. A position, which changes nothing, is not checked.
    token = await api.login(crew_user, CREW_PASSWORD)
    operator = await api.login("operator")
    status, body = await api.call("POST", f"/api/incidents/{created['incident']['id']}/dispatch", operator, json={"unit_id": spare})
    assert status == 201, body
    phone = await live(api, "/ws/unit", token, "phone")
    async with con.transaction():
        await con.execute("SET LOCAL session_replication_role = replica")
        await con.execute("UPDATE sessions SET revoked_at = now() WHERE user_id = (SELECT id FROM users WHERE username = $1)", crew_user)
    await phone.ws.send(json.dumps({"type": "position", "lat": -6.28, "lon": 106.71, "ref": "p"}))
    await phone.ws.send(json.dumps({"type": "ack", "assignment_id": body["assignment"]["id"], "ref": "a"}))
    assert await phone.closed(5.0) == (CLOSE_SESSION_ENDED, REVOKED)
    [reply] = [m for m in phone.received if m.get("ref") == "a"]
    assert reply["type"] == "error" and reply["error"]["code"] == "unauthorized"
    assert await con.fetchval("SELECT acknowledged_at FROM assignments WHERE id = $1", body["assignment"]["id"]) is None


async def test_a_joined_doctor_whose_session_ends_unseen_cannot_chat(api: Api, con: asyncpg.Connection) -> None:
    consult_id, pk, sp = await accepted_consult(api)
    pk_ws, _ = await join(api, consult_id, await token_for(api, consult_id, pk))
    async with con.transaction():
        await con.execute("SET LOCAL session_replication_role = replica")  # no revocation event
        await con.execute("UPDATE sessions SET revoked_at = now() WHERE user_id = (SELECT id FROM users WHERE username = 'puskesmas')")
    sp_ws, _ = await join(api, consult_id, await token_for(api, consult_id, sp))
    room = Watched("room", pk_ws)
    await pk_ws.send(json.dumps({"type": "chat", "id": uuid.uuid4().hex, "text": "tidak tersimpan"}))
    assert await room.closed(5.0) == (CLOSE_SESSION_ENDED, REVOKED)
    # The other doctor sees the refused member leave, and never its chat.
    seen = [json.loads(await asyncio.wait_for(sp_ws.recv(), 5))]
    while not (seen[-1]["type"] == "presence" and seen[-1]["state"] == "left"):
        seen.append(json.loads(await asyncio.wait_for(sp_ws.recv(), 5)))
    assert [m for m in seen if m["type"] == "chat"] == []
    assert await con.fetchval("SELECT count(*) FROM consult_chat WHERE consult_id = $1", uuid.UUID(consult_id)) == 0
    await sp_ws.close()


def revoked(session_id: int, event_id: int = 1) -> Event:
    now = dt.datetime.now(dt.UTC)
    expires = (now + dt.timedelta(hours=1)).isoformat()
    return Event(event_id, now, EVENT, frozenset({"server:sessions"}), {"session": session_id, "user": 1, "expires_at": expires})


async def test_guards_end_on_revocation_seen_before_or_after_they_start_and_at_expiry() -> None:
    revocations = Revocations()
    ended: list[tuple[str, str]] = []
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    kept = revocations.guard(1, later, lambda reason: ended.append(("kept", reason)))
    doomed = revocations.guard(2, later, lambda reason: ended.append(("doomed", reason)))
    revocations.seen(revoked(2))
    assert ended == [("doomed", REVOKED)] and doomed.ended == REVOKED and kept.ended is None
    # A socket whose handshake read the session just before the revocation arrived ends as it registers.
    revocations.guard(2, later, lambda reason: ended.append(("late", reason)))
    assert ended[-1] == ("late", REVOKED)
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=0.2)
    revocations.guard(3, soon, lambda reason: ended.append(("short", reason)))
    await asyncio.sleep(0.4)
    assert ended[-1] == ("short", EXPIRED)
    kept.release()
    revocations.seen(revoked(1, 2))  # a released guard is not called
    assert [name for name, _ in ended] == ["doomed", "late", "short"]


def timer_handles() -> int:
    gc.collect()
    return sum(isinstance(o, asyncio.TimerHandle) and not o.cancelled() for o in gc.get_objects())


async def test_sessions_expire_in_order_under_one_timer_whatever_the_order_their_sockets_came_in() -> None:
    """Idle sockets hold no timer each: a thousand guards add one timer handle to the loop, not a thousand, and
    each session still ends at its own expiry, including one registered after a later one, and after its guards
    came and went many times (a phone reconnecting)."""
    revocations = Revocations()
    ended: list[tuple[int, str]] = []
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    before = timer_handles()
    for session_id in range(100, 1100):
        revocations.guard(session_id, later, lambda reason, s=session_id: ended.append((s, reason)))
    assert timer_handles() - before == 1
    now = dt.datetime.now(dt.UTC)
    for _ in range(500):  # reconnects of one session: its socket's guard comes and goes
        revocations.guard(3, now + dt.timedelta(seconds=1.2), lambda reason: ended.append((-3, reason))).release()
    for session_id, seconds in ((3, 1.2), (1, 0.4), (2, 0.8)):
        revocations.guard(session_id, now + dt.timedelta(seconds=seconds), lambda reason, s=session_id: ended.append((s, reason)))
    await asyncio.sleep(0.6 - (dt.datetime.now(dt.UTC) - now).total_seconds())
    assert ended == [(1, EXPIRED)]
    await asyncio.sleep(1.0)
    assert ended == [(1, EXPIRED), (2, EXPIRED), (3, EXPIRED)]


async def test_an_event_the_bus_delivers_with_a_revocation_never_reaches_its_sockets(api: Api, con: asyncpg.Connection) -> None:
    """A revocation and a later event in one catch-up batch (one commit here; a missed NOTIFY does the same):
    the socket closes and never sends the later event."""
    status, created = await api.call("POST", "/api/calls", await api.login("operator"), json=call_body())
    unit_id = created["recommendations"][0]["unit_id"]
    crew_user = await crew_for(con, unit_id)
    token = await api.login(crew_user, CREW_PASSWORD)
    sockets = [await live(api, path, token, path) for path in ("/ws/unit", "/ws/events", "/ws/unit")]
    async with con.transaction():
        await con.execute("UPDATE sessions SET revoked_at = now() WHERE user_id = (SELECT id FROM users WHERE username = $1)", crew_user)
        await con.execute("SELECT append_event('unit.dispatched', $1, $2)", [f"unit:{unit_id}"], {"unit_id": unit_id})
    for watched in sockets:
        assert await watched.closed(5.0) == (CLOSE_SESSION_ENDED, REVOKED)
        assert watched.events("unit.dispatched") == [], watched.name


async def test_a_revocation_that_arrives_during_the_handshake_closes_the_socket_unwelcomed(api: Api, con: asyncpg.Connection) -> None:
    """The handshake read the session as live, the revocation reached this process before the socket
    registered: the socket closes at once, with no hello or welcome, and a join starts no session."""
    consult_id, pk, sp = await accepted_consult(api)
    sp_ws, _ = await join(api, consult_id, await token_for(api, consult_id, sp))
    pk_join = await token_for(api, consult_id, pk)
    operator = await api.login("operator")
    for username in ("puskesmas", "operator"):
        session_id = await con.fetchval("SELECT s.id FROM sessions s JOIN users u ON u.id = s.user_id WHERE u.username = $1", username)
        api.server.app[REVOCATIONS].seen(revoked(session_id))  # as the bus would; the database still says live
    pk_ws = await websockets.connect(room_url(api, consult_id))
    await pk_ws.send(join_text(pk_join))
    room = Watched("room", pk_ws)
    console = Watched("console", await websockets.connect(socket_url(api, "/ws/operator", operator)))
    assert await room.closed(5.0) == (CLOSE_SESSION_ENDED, REVOKED)
    assert await console.closed(5.0) == (CLOSE_SESSION_ENDED, REVOKED)
    assert room.received == [] and console.received == []
    left = await recv(sp_ws, "presence")  # the room let the closed member go
    assert left["state"] == "left"
    status, body = await api.call("GET", f"/api/consults/{consult_id}", sp)
    assert (status, body["consult"]["state"]) == (200, "accepted")
    await sp_ws.close()


async def test_a_revocation_whose_notify_was_missed_still_closes_the_sockets(api: Api, con: asyncpg.Connection) -> None:
    """The bus's listening connection is cut (a database failover, a network drop): the NOTIFY of the
    revocation reaches nobody, and the bus finds it in the table when it reconnects, well within 1 s."""
    console = await live(api, "/ws/operator", await api.login("operator"), "console")
    # Cut the listener and revoke at once, before the bus has listened again (it reconnects in milliseconds).
    listeners = await con.fetch(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1",
        LISTENER_NAME,
    )
    await con.execute("UPDATE sessions SET revoked_at = now() WHERE user_id = (SELECT id FROM users WHERE username = 'operator')")
    assert len(listeners) == 1
    assert await console.closed(1.0) == (CLOSE_SESSION_ENDED, REVOKED)
