"""Event appends under concurrency, and their delivery: numbered from a sequence at commit (now) against
numbered under a lock held through the commit (before).

Every change in psc119 is one transaction that appends its event and then does more (the audit row,
further statements) before it commits. Until migration 0015 a deferred trigger numbered the events at
commit under an advisory lock and NOTIFY'd: both are held until the commit's WAL flush ends, so every
event-writing transaction in the system waited for the one before it. Now the trigger numbers from a
sequence and the server NOTIFYs after the commit; readers stop before an id that may still commit.

``--writers`` (a list) connections each run ``--transactions`` transactions of: append an event, write an
audit row, one more statement, commit. An event bus in the same process follows the log; an event's
delivery time runs from the end of its transaction's body (its COMMIT is sent) to the bus handing it to
a subscriber. Four ways, in the same process on the same database:

- before: the trigger of migration 0013 (lock, ``max(id) + 1``, NOTIFY in the commit), installed here;
- a sequence, NOTIFY still in the commit (as for a client other than the server's): NOTIFY alone takes
  PostgreSQL's notification lock through the commit's flush;
- a sequence, the NOTIFY after the commit, each firing of the trigger emptying the whole queue, a logged table
  (migration 0015's trigger, installed here): every firing scans every row version the queue holds;
- now: each event numbered by its own firing, found by its key, in an unlogged queue (migration 0024).

Each event carries 1,200 bytes besides its number, about what a dispatch's event carries.

It prints transactions/s, the p50/p99 transaction time and delivery time, and asserts that the bus
delivered every event once, in id order.

    python bench/bench_event_append.py [--writers 20,100] [--transactions 200]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
from dispatch_load import database_cpu_seconds
from results import Row, emit

from bench_support import migrated_database, percentile
from server import audit, db, events, migrate
from server.bus import EventBus, Subscription
from server.config import DatabaseSettings
from server.metrics import Metrics

Append = Callable[[asyncpg.Connection, dict[str, Any]], Awaitable[None]]
ACTOR = audit.Actor(user_id=None, username="bench")
AUDIENCE = ["role:admin"]
TYPE = "bench.append"

def locked_at_commit_sql() -> str:
    """Migration 0013's numbering trigger, as it was, on a queue of its own."""
    migration = next(m for m in migrate.available() if m.version == 13).sql
    trigger = migration[migration.index("CREATE FUNCTION number_events()"):]
    return "CREATE TABLE event_queue_0013 (LIKE event_queue INCLUDING DEFAULTS);\n" + trigger.replace(
        "number_events", "number_events_0013").replace("event_queue", "event_queue_0013")


async def locked_at_commit(con: asyncpg.Connection, payload: dict[str, Any]) -> None:
    await con.execute("INSERT INTO event_queue_0013 (type, audience, payload) VALUES ($1, $2, $3)", TYPE, AUDIENCE, payload)


def emptied_at_commit_sql() -> str:
    """Migration 0015's numbering trigger, as it was (each firing empties the whole queue), on a logged queue of its own."""
    migration = next(m for m in migrate.available() if m.version == 15).sql
    trigger = migration[migration.index("CREATE OR REPLACE FUNCTION number_events()"):migration.index("-- The transactions (virtual ids)")]
    return (
        "CREATE TABLE event_queue_0015 (LIKE event_queue INCLUDING DEFAULTS);\n"
        + trigger.replace("number_events", "number_events_0015").replace("event_queue", "event_queue_0015")
        + "CREATE CONSTRAINT TRIGGER event_queue_0015_numbered AFTER INSERT ON event_queue_0015\n"
        "    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION number_events_0015();\n"
    )


async def emptied_at_commit(con: asyncpg.Connection, payload: dict[str, Any]) -> None:
    announced = con.announce_after_commit()  # as the server's appends are: the NOTIFY after the commit
    await con.execute("INSERT INTO event_queue_0015 (type, audience, payload, announced) VALUES ($1, $2, $3, $4)",
                      TYPE, AUDIENCE, payload, announced)


async def notify_in_commit(con: asyncpg.Connection, payload: dict[str, Any]) -> None:
    await con.execute("SELECT append_event($1, $2, $3)", TYPE, AUDIENCE, payload)  # not announced: the commit NOTIFYs


async def numbered_now(con: asyncpg.Connection, payload: dict[str, Any]) -> None:
    await events.append(con, TYPE, payload, AUDIENCE)


BEFORE, NOTIFYING, NOW = "lock through the commit (before)", "sequence, NOTIFY in the commit", "sequence, NOTIFY after the commit (now)"
EMPTIED = "sequence, each firing emptying the queue (0015)"
WAYS: dict[str, Append] = {BEFORE: locked_at_commit, NOTIFYING: notify_in_commit, EMPTIED: emptied_at_commit, NOW: numbered_now}
# Each event as large as a dispatch's: the unit's snapshot and the incident's crew view.
PAD = "x" * 1200


@dataclasses.dataclass(frozen=True)
class Result:
    rate: float  # transactions/s
    tx_ms: list[float]
    delivery_ms: list[float]
    db_cpu_ms: float  # PostgreSQL's CPU per transaction (every process of it)


async def run(
    pool: asyncpg.Pool, sub: Subscription, append: Append, writers: int, transactions: int, tag: str, database: Path,
) -> Result:
    sent: dict[int, float] = {}
    tx_ms: list[float] = []
    delivered: list[tuple[int, float]] = []  # (event id, ms from COMMIT sent to delivery)
    total = writers * transactions

    async def follow() -> None:
        while len(delivered) < total:
            event = await sub.queue.get()
            if event.payload.get("tag") == tag:
                delivered.append((event.id, (time.perf_counter() - sent[event.payload["n"]]) * 1000))

    async def writer(w: int) -> None:
        async with pool.acquire() as con:
            for i in range(transactions):
                n = w * transactions + i
                start = time.perf_counter()
                async with con.transaction():
                    await append(con, {"tag": tag, "n": n, "pad": PAD})
                    await audit.record(con, ACTOR, "bench.change", f"bench:{w}", {"i": i})
                    await con.fetchval("SELECT count(*) FROM audit_log WHERE object = $1", f"bench:{w}")
                    sent[n] = time.perf_counter()
                tx_ms.append((time.perf_counter() - start) * 1000)

    if await pool.fetchval("SELECT max(id) FROM events") is not None:
        await pool.execute("SELECT setval('events_id_seq', max(id)) FROM events")  # after the other numbering
    follower = asyncio.create_task(follow())
    start, db_cpu = time.perf_counter(), database_cpu_seconds(database)
    await asyncio.gather(*(writer(w) for w in range(writers)))
    rate = total / (time.perf_counter() - start)
    db_cpu_ms = (database_cpu_seconds(database) - db_cpu) * 1000 / total
    await asyncio.wait_for(follower, 60)
    ids = [event_id for event_id, _ in delivered]
    assert ids == sorted(set(ids)) and len(ids) == total, "the bus missed, repeated or reordered an event"
    return Result(rate, tx_ms, [ms for _, ms in delivered], db_cpu_ms)


async def measure(dsn: str, database: Path, writers: int, transactions: int) -> dict[str, Result]:
    pool = await db.create_pool(dsn, DatabaseSettings(pool_min=writers, pool_max=writers))
    bus = EventBus(dsn, pool, Metrics(), queue_size=10 * writers * transactions)
    await bus.start()
    sub = bus.subscribe(AUDIENCE)
    try:
        results = {}
        for name, append in WAYS.items():
            await run(pool, sub, append, writers, 5, f"warm {name}", database)  # warm up the connections and statements
            results[name] = result = await run(pool, sub, append, writers, transactions, name, database)
            print(
                f"{writers} writers, {name}: {result.rate:,.0f} transactions/s, "
                f"p50 {percentile(result.tx_ms, 50):.2f} ms, p99 {percentile(result.tx_ms, 99):.2f} ms; "
                f"delivery p50 {percentile(result.delivery_ms, 50):.2f} ms, p99 {percentile(result.delivery_ms, 99):.2f} ms; "
                f"database CPU {result.db_cpu_ms:.2f} ms per transaction",
                flush=True,
            )
        return results
    finally:
        await bus.stop()
        await pool.close()


def rows(writers: int, results: dict[str, Result]) -> list[Row]:
    now, before, notifying, emptied = results[NOW], results[BEFORE], results[NOTIFYING], results[EMPTIED]
    baseline = "numbered under a lock through the commit, as before"
    timed = [
        (f"event-appending transaction, {writers} writers", "tx_ms"),
        (f"event commit → bus delivery, {writers} writers", "delivery_ms"),
    ]
    return [
        Row(f"event-appending transactions, {writers} writers", now.rate, before.rate, baseline, "tx/s"),
        *(
            Row(f"{name}, p{p}", percentile(getattr(now, field), p), percentile(getattr(before, field), p), baseline, "ms")
            for name, field in timed for p in (50, 99)
        ),
        Row(f"event-appending transactions, {writers} writers", now.rate, notifying.rate, "a sequence, NOTIFY in the commit", "tx/s"),
        Row(f"event-appending transactions, {writers} writers", now.rate, emptied.rate, "each firing emptying the queue (0015)", "tx/s"),
        Row(f"event-appending transaction, {writers} writers, p50", percentile(now.tx_ms, 50), percentile(emptied.tx_ms, 50),
            "each firing emptying the queue (0015)", "ms"),
        Row(f"database CPU per event-appending transaction, {writers} writers", now.db_cpu_ms, emptied.db_cpu_ms,
            "each firing emptying the queue (0015)", "ms"),
    ]


async def main(writer_counts: list[int], transactions: int) -> None:
    async with migrated_database("psc119-bench-append-", max_connections=max(writer_counts) + 20) as (root, dsn):
        con = await db.connect(dsn)
        try:
            await con.execute(locked_at_commit_sql())
            await con.execute(emptied_at_commit_sql())
        finally:
            await con.close()
        measured = [(writers, await measure(dsn, root, writers, transactions)) for writers in writer_counts]
    emit(*(row for writers, results in measured for row in rows(writers, results)))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", default="20,100", help="comma-separated numbers of concurrent writers")
    parser.add_argument("--transactions", type=int, default=200, help="per writer")
    args = parser.parse_args()
    asyncio.run(main([int(w) for w in args.writers.split(",")], args.transactions))
