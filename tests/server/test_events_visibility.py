"""Event ids that become visible out of order, and holes: readers still get every event once, in id order.

Events are numbered as their transaction commits, with no lock held through the commit, so a
transaction numbered N can finish committing after N+1 (its commit is slow), or never (its commit fails
after numbering). Here a deferred trigger that runs after the numbering holds a commit back until the
test opens a gate, then lets it succeed or fail, or keeps it until its backend is killed, while other
writers commit above it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import websockets

from server import db, events
from server.bus import EventBus, Subscription
from server.config import DatabaseSettings
from server.metrics import Metrics
from tests.conftest import Api
from tests.server.dispatch_support import call_body, socket_url
from tests.server.process_support import two_processes

GATE = 119_119
# Fires at commit after the events were numbered (deferred triggers fire in the order their rows came).
COMMIT_DELAY = f"""
CREATE TABLE commit_delay (fail boolean NOT NULL);
CREATE FUNCTION commit_delay() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared({GATE});
    IF NEW.fail THEN RAISE EXCEPTION 'commit refused after numbering'; END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER commit_delay AFTER INSERT ON commit_delay
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION commit_delay();
"""
AUDIENCE = ["role:operator"]


async def _install_commit_delay(dsn: str) -> None:
    con = await db.connect(dsn)
    try:
        await con.execute(COMMIT_DELAY)
    finally:
        await con.close()


async def _write(dsn: str, n: int, *, held: bool = False, fail: bool = False, plain: bool = False) -> None:
    """One transaction appending two events; its commit waits for the gate after numbering if ``held``, then fails if asked.

    ``plain``: an asyncpg connection that is not the server's (its commit sends the NOTIFY itself)."""
    con = await (asyncpg.connect(dsn) if plain else db.connect(dsn))
    if plain:
        await con.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    try:
        async with con.transaction():
            await events.append(con, "test.late", {"n": n, "part": 1}, AUDIENCE)
            await events.append(con, "test.late", {"n": n, "part": 2}, AUDIENCE)
            if held:
                await con.execute("INSERT INTO commit_delay VALUES ($1)", fail)
    except asyncpg.RaiseError:
        if not fail:
            raise
    finally:
        await con.close()


async def _committed_ids(dsn: str) -> list[int]:
    con = await db.connect(dsn)
    try:
        return [r["id"] for r in await con.fetch("SELECT id FROM events WHERE type = 'test.late' ORDER BY id")]
    finally:
        await con.close()


async def _drain(sub: Subscription, count: int, timeout: float = 10) -> list[int]:
    got = []
    async with asyncio.timeout(timeout):
        while len(got) < count:
            event = await sub.queue.get()
            if event.type == "test.late":
                got.append(event.id)
    await asyncio.sleep(0.2)  # nothing more may follow: no event twice
    while not sub.queue.empty():
        got.append(sub.queue.get_nowait().id)
    return got


async def _racing_writers(dsn: str, *, slow: int, fast: int, fail: int = 0) -> None:
    """``slow`` (and ``fail``) writers number their events first and commit late; ``fast`` ones commit above them meanwhile."""
    async with _gate(dsn):
        late = [asyncio.create_task(_write(dsn, n, held=True)) for n in range(slow)]
        late += [asyncio.create_task(_write(dsn, 100 + n, held=True, fail=True)) for n in range(fail)]
        await _until_committing(dsn, slow + fail)
        await asyncio.gather(*(_write(dsn, 1000 + n, plain=n % 5 == 0) for n in range(fast)))
    await asyncio.gather(*late)


@contextlib.asynccontextmanager
async def _gate(dsn: str) -> AsyncIterator[None]:
    """Held commits wait while this is open."""
    con = await db.connect(dsn)
    try:
        await con.execute("SELECT pg_advisory_lock($1)", GATE)
        yield
    finally:
        await con.close()


async def _until_committing(dsn: str, count: int) -> None:
    """Until ``count`` transactions have numbered their events and wait at the gate in their commit."""
    con = await db.connect(dsn)
    try:
        async with asyncio.timeout(20):
            while await con.fetchval(
                """SELECT count(*) FROM pg_stat_activity
                   WHERE datname = current_database() AND wait_event = 'advisory' AND query LIKE 'COMMIT%'"""
            ) < count:
                await asyncio.sleep(0.01)
    finally:
        await con.close()


@contextlib.asynccontextmanager
async def _bus(dsn: str, audience: list[str] | None = AUDIENCE) -> AsyncIterator[tuple[EventBus, asyncpg.Pool, Subscription]]:
    pool = await db.create_pool(dsn, DatabaseSettings(pool_min=1, pool_max=2))
    # A poll far longer than the test: only notifications and the bus's own gap checks may deliver.
    bus = EventBus(dsn, pool, Metrics(), poll_s=60)
    await bus.start()
    try:
        yield bus, pool, bus.subscribe(audience)
    finally:
        await bus.stop()
        await pool.close()


async def test_the_bus_delivers_late_commits_once_each_in_id_order(demo_dsn: str) -> None:
    await _install_commit_delay(demo_dsn)
    async with _bus(demo_dsn) as (_, _, sub):
        await _racing_writers(demo_dsn, slow=5, fast=40)
        committed = await _committed_ids(demo_dsn)
        assert len(committed) == 2 * 45
        assert await _drain(sub, len(committed)) == committed


async def test_a_commit_that_fails_after_numbering_leaves_a_hole_readers_pass(demo_dsn: str) -> None:
    await _install_commit_delay(demo_dsn)
    async with _bus(demo_dsn) as (bus, pool, sub):
        await _racing_writers(demo_dsn, slow=2, fast=20, fail=3)
        committed = await _committed_ids(demo_dsn)
        assert len(committed) == 2 * 22
        issued = await pool.fetchval("SELECT last_value FROM events_id_seq")
        assert issued - await pool.fetchval("SELECT count(*) FROM events") == 6  # the failed commits' ids: holes
        assert await _drain(sub, len(committed)) == committed
        assert bus.last_id >= max(committed)
        assert await events.last_id(pool) == issued  # a reader starting now starts past the holes


async def test_a_writer_killed_while_committing_holds_readers_back_only_until_it_is_gone(demo_dsn: str) -> None:
    await _install_commit_delay(demo_dsn)
    async with _gate(demo_dsn), _bus(demo_dsn) as (_, pool, sub):
        stuck = asyncio.create_task(_write(demo_dsn, 0, held=True))
        try:
            await _until_committing(demo_dsn, 1)  # numbered, and hanging in its commit
            await asyncio.gather(*(_write(demo_dsn, 1000 + n) for n in range(10)))
            committed = await _committed_ids(demo_dsn)
            await asyncio.sleep(0.3)
            assert sub.queue.empty()  # nothing goes out past an id that may still commit
            assert await pool.fetchval(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'COMMIT%' AND datname = current_database()"
            )
            assert await _drain(sub, len(committed)) == committed
        finally:
            with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                await stuck


async def _events(ws: websockets.ClientConnection, count: int, timeout: float = 15) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        while len(got) < count:
            message = json.loads(await ws.recv())
            if message["type"] == "event" and message["event"] == "test.late":
                got.append(message)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(0.3):  # nothing more may follow: no event twice
            while True:
                message = json.loads(await ws.recv())
                if message["type"] == "event":
                    got.append(message)
    return got


async def test_sockets_resuming_after_an_id_get_every_later_event_once_in_order_while_commits_race(api: Api) -> None:
    await _install_commit_delay(api.dsn)
    token = await api.login("operator")
    from_start = await websockets.connect(socket_url(api, "/ws/events", token, after=0))
    await from_start.recv()
    writers = asyncio.create_task(_racing_writers(api.dsn, slow=4, fast=30, fail=2))
    # A second socket resumes mid-race from the last id the first has seen, as a reconnecting client does.
    first = await _events(from_start, 10)
    resumed = await websockets.connect(socket_url(api, "/ws/events", token, after=first[-1]["id"]))
    await resumed.recv()
    await writers
    committed = await _committed_ids(api.dsn)
    assert len(committed) == 2 * 34
    rest = await _events(from_start, len(committed) - len(first))
    later = await _events(resumed, len([i for i in committed if i > first[-1]["id"]]))
    # And one that connects after everything, from the start of the log (a phone back after a long time).
    late = await websockets.connect(socket_url(api, "/ws/events", token, after=0))
    await late.recv()
    replayed = await _events(late, len(committed))
    for ws in (from_start, resumed, late):
        await ws.close()
    assert [m["id"] for m in first + rest] == committed
    assert [m["id"] for m in later] == [i for i in committed if i > first[-1]["id"]]
    assert [m["id"] for m in replayed] == committed


async def test_every_way_of_appending_wakes_the_buses(demo_dsn: str) -> None:
    """Through the server's connections (NOTIFY after the commit), through any other client, and by SQL alone."""
    async with _bus(demo_dsn, None) as (_, _, sub):
        for plain in (False, True):
            await _write(demo_dsn, int(plain), plain=plain)
            assert [e.type for e in await _take(sub, 2)] == ["test.late", "test.late"]
        con = await asyncpg.connect(demo_dsn)
        try:
            await con.execute(
                "INSERT INTO sessions (token_hash, user_id, expires_at) SELECT '\\x01', id, now() + interval '1 hour' FROM users LIMIT 1"
            )
            await con.execute("UPDATE sessions SET revoked_at = now() WHERE token_hash = '\\x01'")  # by hand, as in psql
        finally:
            await con.close()
        assert [e.type for e in await _take(sub, 1)] == ["session.revoked"]


async def _take(sub: Subscription, count: int) -> list[events.Event]:
    async with asyncio.timeout(5):  # the bus polls only every 60 s: a notification woke it
        return [await sub.queue.get() for _ in range(count)]


async def test_a_socket_on_one_process_gets_every_event_of_the_other_once_in_order(demo_dsn: str, tmp_path: Path) -> None:
    await _install_commit_delay(demo_dsn)
    async with two_processes(demo_dsn, tmp_path) as (a, b):
        token = await b.login("operator")
        ws = await websockets.connect(socket_url(b, "/ws/events", token, after=0))
        await ws.recv()
        operator = await a.login("operator")
        # Calls taken on A while commits race in the database.
        results = await asyncio.gather(
            _racing_writers(demo_dsn, slow=3, fast=10, fail=1),
            *(a.call("POST", "/api/calls", operator, json=call_body(phone=f"08150000{n:02d}")) for n in range(20)),
        )
        assert [status for status, _ in results[1:]] == [201] * 20
        con = await db.connect(demo_dsn)
        try:
            expected = [r["id"] for r in await con.fetch(
                "SELECT id FROM events WHERE type IN ('test.late', 'call.received') ORDER BY id")]
        finally:
            await con.close()
        got: list[int] = []
        async with asyncio.timeout(20):
            while len(got) < len(expected):
                message = json.loads(await ws.recv())
                if message["type"] == "event" and message["event"] in ("test.late", "call.received"):
                    got.append(message["id"])
        await ws.close()
    assert got == expected


async def test_a_transaction_announces_its_events_once_it_has_committed_and_never_if_rolled_back(demo_dsn: str) -> None:
    listener, writer = await db.connect(demo_dsn), await db.connect(demo_dsn)
    heard: asyncio.Queue[str] = asyncio.Queue()
    await listener.add_listener(events.CHANNEL, lambda *args: heard.put_nowait(args[-1]))

    async def quiet() -> bool:
        await asyncio.sleep(0.3)
        return heard.empty()

    try:
        with contextlib.suppress(ZeroDivisionError):
            async with writer.transaction():
                await events.append(writer, "test.rolled_back", {}, AUDIENCE)
                raise ZeroDivisionError
        assert await quiet()
        outer = writer.transaction()
        await outer.start()
        async with writer.transaction():  # a savepoint: its release commits nothing yet
            await events.append(writer, "test.nested", {}, AUDIENCE)
        assert await quiet()
        await outer.commit()
        async with asyncio.timeout(5):
            await heard.get()
        assert await quiet()  # once
        assert await writer.fetchval("SELECT count(*) FROM events WHERE type LIKE 'test.%'") == 1
    finally:
        await listener.close()
        await writer.close()


async def test_callers_asking_for_the_settled_id_at_once_share_a_read_begun_after_each_asked(
    demo_dsn: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As a thousand phones reconnecting at once do: each read waits out the commits under way.
    await _install_commit_delay(demo_dsn)
    reads = 0
    read = events.last_id

    async def counted(con: asyncpg.Pool) -> int:
        nonlocal reads
        reads += 1
        return await read(con)

    monkeypatch.setattr(events, "last_id", counted)
    async with _bus(demo_dsn) as (bus, _, _):
        reads = 0
        async with _gate(demo_dsn):
            held = asyncio.create_task(_write(demo_dsn, 1, held=True))
            await _until_committing(demo_dsn, 1)
            first = asyncio.create_task(bus.settled_id())  # its read waits for the held commit
            await asyncio.sleep(0.1)
            await _write(demo_dsn, 2)  # committed above the held events meanwhile
            later = [asyncio.create_task(bus.settled_id()) for _ in range(50)]
            await asyncio.sleep(0.1)
            assert not first.done() and not any(task.done() for task in later)
        await held
        first_id, later_ids = await first, await asyncio.gather(*later)
    committed = await _committed_ids(demo_dsn)
    assert reads == 2
    # The first read began before the second write: it answers up to the held events only; every later caller
    # asked after that write committed, and is answered by a read that began after it asked.
    assert first_id == committed[1] < committed[-1]
    assert set(later_ids) == {committed[-1]}


async def test_a_socket_opened_at_the_newest_event_reads_no_backlog_and_a_resuming_one_reads_what_it_missed(
    api: Api, monkeypatch: pytest.MonkeyPatch,
) -> None:
    token = await api.login("operator")
    for n in range(3):
        await _write(api.dsn, n)
    reads: list[int] = []
    since = events.since

    async def counted(con: asyncpg.Pool, after: int, audience: list[str], limit: int = 1000) -> list[events.Event]:
        reads.append(after)
        return await since(con, after, audience, limit)

    monkeypatch.setattr(events, "since", counted)
    fresh = await websockets.connect(socket_url(api, "/ws/events", token))
    start = json.loads(await fresh.recv())["last_event_id"]
    await _write(api.dsn, 3)
    live = await _events(fresh, 2)
    assert reads == []  # every event after its start came from the bus
    committed = await _committed_ids(api.dsn)
    assert [m["id"] for m in live] == [i for i in committed if i > start] == committed[-2:]

    resumed = await websockets.connect(socket_url(api, "/ws/events", token, after=committed[1]))
    await resumed.recv()
    missed = await _events(resumed, len(committed) - 2)
    for ws in (fresh, resumed):
        await ws.close()
    assert reads[0] == committed[1]
    assert [m["id"] for m in missed] == committed[2:]
