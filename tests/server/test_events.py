"""The event log: commit order under many concurrent writers, resumable websockets, shutdown."""

from __future__ import annotations

import asyncio
import base64
import json
import random

import aiohttp
import asyncpg
import websockets

from server import db, events
from server.bus import EventBus
from server.config import DatabaseSettings
from server.metrics import Metrics
from tests.conftest import Api, app_config, start_api


async def _write_events(dsn: str, n: int, delay: float) -> None:
    con = await db.connect(dsn)
    try:
        async with con.transaction():
            await events.append(con, "test.event", {"n": n, "part": 1}, ["role:operator"])
            await events.append(con, "test.event", {"n": n, "part": 2}, ["role:operator"])
            # Hold the transaction open after appending: the trap is a late commit of a lower id.
            await asyncio.sleep(delay)
    finally:
        await con.close()


async def test_a_reader_below_the_settled_id_sees_every_event_in_order_under_concurrent_writers(demo_dsn: str) -> None:
    writers = 60
    total = 2 * writers
    reader = await db.connect(demo_dsn)
    seen: list[int] = []
    done = asyncio.Event()

    async def poll() -> None:
        last = 0
        while not done.is_set() or last < total:
            # The readers' rule: never past the settled id (a plain `id > last` read would skip a late commit).
            settled = await events.last_id(reader)
            rows = await reader.fetch("SELECT id FROM events WHERE id > $1 AND id <= $2 ORDER BY id", last, settled)
            for r in rows:
                seen.append(r["id"])
                last = r["id"]
            await asyncio.sleep(0.001)

    poller = asyncio.create_task(poll())
    rng = random.Random(119)
    await asyncio.gather(*(_write_events(demo_dsn, n, rng.uniform(0, 0.02)) for n in range(writers)))
    done.set()
    await asyncio.wait_for(poller, 10)
    rows = await reader.fetch("SELECT id, payload FROM events ORDER BY id")
    await reader.close()
    assert [r["id"] for r in rows] == list(range(1, total + 1))
    # A reader resuming "after the last id it saw" saw every id, in order: nothing committed late.
    assert seen == list(range(1, total + 1))
    # A transaction's events are in the order it appended them.
    parts = [(r["payload"]["n"], r["payload"]["part"]) for r in rows]
    assert all(parts.index((n, 1)) < parts.index((n, 2)) for n in range(writers))


async def test_a_writer_that_keeps_its_transaction_open_delays_nobody(demo_dsn: str) -> None:
    slow, quick = await db.connect(demo_dsn), await db.connect(demo_dsn)
    try:
        slow_tx = slow.transaction()
        await slow_tx.start()
        await events.append(slow, "slow", {}, ["role:operator"])
        async with asyncio.timeout(2):  # an append used to wait here until the slow writer committed
            async with quick.transaction():
                await events.append(quick, "quick", {}, ["role:operator"])
        assert [r["type"] for r in await quick.fetch("SELECT type FROM events ORDER BY id")] == ["quick"]
        await slow_tx.commit()
        assert [r["type"] for r in await quick.fetch("SELECT type FROM events ORDER BY id")] == ["quick", "slow"]
    finally:
        await slow.close()
        await quick.close()


async def _queue_scans(con: asyncpg.Connection) -> int:
    """Sequential scans of the event queue so far, this connection's own included (flushed first)."""
    await con.execute("SELECT pg_stat_force_next_flush()")
    await con.execute("SELECT 1")  # the flush comes as a statement ends
    await con.execute("SELECT pg_stat_clear_snapshot()")
    return int(await con.fetchval("SELECT seq_scan FROM pg_stat_user_tables WHERE relname = 'event_queue'"))


async def _hold_queued(held: asyncpg.Connection) -> asyncpg.transaction.Transaction:
    """1,000 events queued by ``held`` in a transaction left open (its rows fill the queue's pages)."""
    holding = held.transaction()
    await holding.start()
    await held.execute(
        "SELECT append_event('test.held', ARRAY['role:operator'], jsonb_build_object('n', n, 'pad', repeat('x', 500)), true)"
        " FROM generate_series(1, 1000) AS n"
    )
    return holding


async def test_numbering_an_event_reads_no_other_queued_event(demo_dsn: str) -> None:
    # Another transaction's 1,000 queued events (uncommitted) and the dead rows of committed ones fill the queue's
    # pages: each numbering used to scan them all.
    held, con = await db.connect(demo_dsn), await db.connect(demo_dsn)
    try:
        holding = await _hold_queued(held)
        before = await _queue_scans(con)
        for n in range(20):
            async with con.transaction():
                await events.append(con, "test.numbered", {"n": n, "part": 1}, ["role:operator"])
                await events.append(con, "test.numbered", {"n": n, "part": 2}, ["role:operator"])
        assert await _queue_scans(con) == before
        rows = await con.fetch("SELECT id, payload FROM events WHERE type = 'test.numbered' ORDER BY id")
        assert [(r["payload"]["n"], r["payload"]["part"]) for r in rows] == [(n, part) for n in range(20) for part in (1, 2)]
        await holding.commit()
        assert await con.fetchval("SELECT count(*) FROM events WHERE type = 'test.held'") == 1000
        assert await con.fetchval("SELECT count(*) FROM event_queue") == 0
    finally:
        await held.close()
        await con.close()


async def test_numbering_keeps_to_the_index_though_its_plan_was_made_on_an_empty_queue(demo_dsn: str) -> None:
    # A server's connection numbers its first events on a queue autovacuum found empty, where a scan costs least,
    # and keeps that plan; the queue then fills with other transactions' rows (and dead ones, until a vacuum).
    held, con = await db.connect(demo_dsn), await db.connect(demo_dsn)
    try:
        await con.execute("VACUUM event_queue")
        for n in range(10):
            async with con.transaction():
                await events.append(con, "test.early", {"n": n}, ["role:operator"])
        holding = await _hold_queued(held)
        before = await _queue_scans(con)
        for n in range(5):
            async with con.transaction():
                await events.append(con, "test.numbered", {"n": n}, ["role:operator"])
        assert await _queue_scans(con) == before
        await holding.rollback()
    finally:
        await held.close()
        await con.close()


async def test_an_event_is_written_to_the_wal_once(con: asyncpg.Connection) -> None:
    # Incompressible, so the log holds the payload as it is: queued, then numbered into the events.
    payload = {"blob": base64.b64encode(random.Random(119).randbytes(300_000)).decode()}
    size = len(payload["blob"])
    start = await con.fetchval("SELECT pg_current_wal_insert_lsn()")
    async with con.transaction():
        await events.append(con, "test.large", payload, ["role:operator"])
    written = await con.fetchval("SELECT pg_current_wal_insert_lsn() - $1::pg_lsn", start)
    assert size <= written < 1.5 * size
    assert (await con.fetchval("SELECT payload FROM events WHERE type = 'test.large'")) == payload


async def test_append_outside_a_transaction_is_refused(con: asyncpg.Connection) -> None:
    try:
        await events.append(con, "x", {}, ["role:admin"])
    except RuntimeError as exc:
        assert "inside the transaction" in str(exc)
    else:
        raise AssertionError("append without a transaction was accepted")


async def _append(dsn: str, type: str, audience: list[str]) -> int:
    """Append one event in its own transaction; its id, given at commit."""
    con = await db.connect(dsn)
    try:
        async with con.transaction():
            await events.append(con, type, {"type": type}, audience)
        event_id: int = await con.fetchval("SELECT max(id) FROM events WHERE type = $1", type)
        return event_id
    finally:
        await con.close()


def ws_url(api: Api, token: str, after: int | None = None) -> str:
    url = api.url("/ws/events").replace("http://", "ws://") + f"?token={token}"
    return url if after is None else url + f"&after={after}"


async def _receive_events(ws: websockets.ClientConnection, count: int) -> list[dict]:
    got = []
    while len(got) < count:
        message = json.loads(await asyncio.wait_for(ws.recv(), 5))
        if message["type"] == "event":
            got.append(message)
    return got


async def test_socket_delivers_only_the_users_audience_and_resumes_after_an_id(api: Api) -> None:
    token = await api.login("operator")
    first = await _append(api.dsn, "for.operator", ["role:operator"])
    await _append(api.dsn, "for.field", ["unit:ns-01"])
    async with websockets.connect(ws_url(api, token, after=0)) as ws:
        hello = json.loads(await ws.recv())
        assert hello["type"] == "hello"
        backlog = await _receive_events(ws, 1)
        assert [e["event"] for e in backlog] == ["for.operator"]
        live_id = await _append(api.dsn, "live.operator", ["role:operator"])
        await _append(api.dsn, "live.other", ["role:specialist"])
        live = await _receive_events(ws, 1)
        assert [(e["id"], e["event"]) for e in live] == [(live_id, "live.operator")]
    # Reconnect after the first id: only what came later.
    missed = await _append(api.dsn, "while.away", ["role:operator"])
    async with websockets.connect(ws_url(api, token, after=first)) as ws:
        await ws.recv()
        got = await _receive_events(ws, 2)
        assert [e["id"] for e in got] == [live_id, missed]


async def test_socket_without_resume_point_gets_only_live_events(api: Api) -> None:
    token = await api.login("operator")
    await _append(api.dsn, "old", ["role:operator"])
    async with websockets.connect(ws_url(api, token)) as ws:
        await ws.recv()
        new = await _append(api.dsn, "new", ["role:operator"])
        got = await _receive_events(ws, 1)
        assert got[0]["id"] == new


async def test_socket_needs_a_valid_token_and_resume_point(api: Api) -> None:
    for url, status in ((ws_url(api, "bogus"), 401), (ws_url(api, await api.login("admin"), after=-1).replace("-1", "x1"), 422)):
        try:
            async with websockets.connect(url):
                raise AssertionError("connected")
        except websockets.InvalidStatus as exc:
            assert exc.response.status_code == status


async def test_malformed_socket_messages_get_an_error_and_the_socket_survives(api: Api) -> None:
    token = await api.login("field")
    async with websockets.connect(ws_url(api, token)) as ws:
        await ws.recv()
        for bad, field in (("not json", None), ("[1]", "type"), ('{"type": "launch"}', "type")):
            await ws.send(bad)
            reply = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert reply["type"] == "error" and reply["error"]["field"] == field, bad
        await ws.send('{"type": "ping"}')
        assert json.loads(await asyncio.wait_for(ws.recv(), 5)) == {"type": "pong"}


async def test_shutdown_closes_sockets_with_going_away(demo_dsn: str) -> None:
    client = await start_api(demo_dsn, app_config(demo_dsn))
    token = await client.login("operator")
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(ws_url(client, token))
        await ws.receive_json()
        closing = asyncio.create_task(client.server.close())
        msg = await asyncio.wait_for(ws.receive(), 10)
        assert msg.type == aiohttp.WSMsgType.CLOSE
        assert msg.data == 1001
        await ws.close()
        await closing
    await client.session.close()


async def test_bus_gives_each_subscriber_its_audience_once_and_reads_on_its_own_connection(demo_dsn: str) -> None:
    pool = await db.create_pool(demo_dsn, DatabaseSettings(pool_min=1, pool_max=1))
    bus = EventBus(demo_dsn, pool, Metrics(), poll_s=0.2)
    await bus.start()
    unit_x, both, everything = bus.subscribe(["unit:x"]), bus.subscribe(["unit:y", "role:operator"]), bus.subscribe(None)
    gone = bus.subscribe(["unit:x"])
    bus.unsubscribe(gone)
    try:
        async with pool.acquire():  # the handlers hold the whole pool: delivery must not wait for it
            writer = await db.connect(demo_dsn)
            async with writer.transaction():
                await events.append(writer, "to.x", {}, ["unit:x", "role:operator"])
                await events.append(writer, "to.y", {}, ["unit:y"])
                await events.append(writer, "to.admin", {}, ["role:admin"])
            await writer.close()
            got = {name: [await asyncio.wait_for(sub.queue.get(), 5) for _ in range(n)]
                   for name, sub, n in (("x", unit_x, 1), ("both", both, 2), ("all", everything, 3))}
    finally:
        await bus.stop()
        await pool.close()
    assert [e.type for e in got["x"]] == ["to.x"]
    assert [e.type for e in got["both"]] == ["to.x", "to.y"]  # in both of its audiences, delivered once
    assert [e.type for e in got["all"]] == ["to.x", "to.y", "to.admin"]
    assert unit_x.queue.empty() and both.queue.empty() and gone.queue.empty()
    assert json.loads(got["x"][0].text)["event"] == "to.x"
