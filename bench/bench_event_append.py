"""Event appends under concurrency: numbered at commit (now) against numbered at the first append (before).

Every change in psc119 is one transaction that appends its event and then does more (the audit row,
further statements, the round trips between them) before it commits. Before migration 0013 the
numbering lock was taken at the first append and held through all of that and the commit, so every
writer in the system queued behind it. Now the lock is taken as the transaction commits.

``--writers`` connections each run ``--transactions`` transactions of: append an event, write an
audit row, one more statement, commit. Both ways run in the same process on the same database; it
prints transactions/s and the p50/p99 transaction time, and asserts only that every event arrived
numbered without gaps.

    python bench/bench_event_append.py [--writers 20] [--transactions 200]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable

import asyncpg
from results import Row, emit

from bench_support import migrated_database, percentile
from server import audit, db, events
from server.config import DatabaseSettings

Append = Callable[[asyncpg.Connection, int], Awaitable[None]]
ACTOR = audit.Actor(user_id=None, username="bench")


async def locked_at_append(con: asyncpg.Connection, n: int) -> None:
    """How an append numbered its event before 0013: the lock from here to the commit."""
    await con.execute("SELECT pg_advisory_xact_lock($1)", 119_000_003)
    event_id = await con.fetchval(
        "INSERT INTO events (id, type, audience, payload) SELECT coalesce(max(id), 0) + 1, $1, $2, $3 FROM events RETURNING id",
        "bench.append", ["role:admin"], {"n": n},
    )
    await con.execute("SELECT pg_notify($1, $2)", events.CHANNEL, str(event_id))


async def numbered_at_commit(con: asyncpg.Connection, n: int) -> None:
    await events.append(con, "bench.append", {"n": n}, ["role:admin"])


async def run(pool: asyncpg.Pool, append: Append, writers: int, transactions: int) -> tuple[float, list[float]]:
    """(transactions/s, each transaction's seconds)."""
    times: list[float] = []

    async def writer(w: int) -> None:
        async with pool.acquire() as con:
            for i in range(transactions):
                start = time.perf_counter()
                async with con.transaction():
                    await append(con, w * transactions + i)
                    await audit.record(con, ACTOR, "bench.change", f"bench:{w}", {"i": i})
                    await con.fetchval("SELECT count(*) FROM audit_log WHERE object = $1", f"bench:{w}")
                times.append(time.perf_counter() - start)

    start = time.perf_counter()
    await asyncio.gather(*(writer(w) for w in range(writers)))
    return writers * transactions / (time.perf_counter() - start), times


async def main(writers: int, transactions: int) -> None:
    async with migrated_database("psc119-bench-append-") as (_root, dsn):
        pool = await db.create_pool(dsn, DatabaseSettings(pool_min=writers, pool_max=writers))
        try:
            results = {}
            for name, append in (("numbered at the first append (before)", locked_at_append), ("numbered at commit (now)", numbered_at_commit)):
                await run(pool, append, writers, 5)  # warm up the connections and statements
                rate, times = await run(pool, append, writers, transactions)
                ms = [t * 1000 for t in times]
                results[name] = (rate, percentile(ms, 50), percentile(ms, 99))
                print(f"{name}: {rate:,.0f} transactions/s, p50 {results[name][1]:.2f} ms, p99 {results[name][2]:.2f} ms")
            ids = [r["id"] for r in await pool.fetch("SELECT id FROM events ORDER BY id")]
            assert ids == list(range(1, len(ids) + 1)), "event ids have gaps"
        finally:
            await pool.close()
    (before_rate, before_p50, before_p99), (now_rate, now_p50, now_p99) = results.values()
    baseline = "numbered at the first append, as before"
    emit(
        Row(f"event-appending transactions, {writers} writers", now_rate, before_rate, baseline, "tx/s"),
        Row(f"event-appending transaction, {writers} writers, p50", now_p50, before_p50, baseline, "ms"),
        Row(f"event-appending transaction, {writers} writers, p99", now_p99, before_p99, baseline, "ms"),
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", type=int, default=20)
    parser.add_argument("--transactions", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(main(args.writers, args.transactions))
