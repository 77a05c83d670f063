"""Benchmark: what a field phone asking ``after=0`` costs and gets, before and after the replay horizon.

Fills a real (embedded) PostgreSQL with a busy centre's event log: ``--days`` of
events (``--per-day`` a day, spread over 60 units, one dispatch in ten), and the
benchmarked unit's assignments, one a day, the last still active. Then, in the same
process, times the replay a phone asking from 0 used to get (every event of its
unit) against the horizon query plus the replay from the horizon, and prints
milliseconds, event counts and ratios. It asserts only that the horizon replay is
the tail of the full one, never a time.

    python bench/bench_unit_replay.py [--days 30] [--per-day 5000] [--runs 20]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg
from results import Row, emit

from bench_support import migrated_database
from server import db, events, unit_replay
from server.config import DatabaseSettings

UNIT = "ns-01"
T = TypeVar("T")


async def fill(con: asyncpg.Connection, days: int, per_day: int) -> None:
    await con.execute(
        "INSERT INTO units (id, callsign, kind, status, base_lat, base_lon) VALUES ($1, 'NS-01', 'motorbike', 'available', -6.3, 106.7)", UNIT
    )
    total = days * per_day
    await con.execute(
        """INSERT INTO events (id, at, type, audience, payload)
           SELECT i, now() - make_interval(secs => ($1 - i) * 86400.0 / $2),
                  CASE WHEN i % 10 = 0 THEN 'unit.dispatched' ELSE 'unit.status' END,
                  ARRAY['role:operator', 'unit:' || CASE WHEN i % 60 = 0 THEN $3 ELSE 'u' || (i % 60) END],
                  jsonb_build_object('incident', jsonb_build_object('caller_phone', '0812' || i))
           FROM generate_series(1, $1) AS i""",
        total, per_day, UNIT,
    )
    await con.execute("SELECT setval('events_id_seq', max(id)) FROM events")  # ids written above, not drawn
    incident = await con.fetchval(
        """INSERT INTO incidents (id, idempotency_key, request_digest, caller_phone, priority, status)
           VALUES (gen_random_uuid(), 'bench', '-', '0812', 'merah', 'dispatched') RETURNING id"""
    )
    for day in range(days, 0, -1):
        await con.execute(
            """INSERT INTO assignments (incident_id, unit_id, assigned_at, ack_deadline, ended_at)
               VALUES ($1, $2, now() - make_interval(days => $3), now(), CASE WHEN $3 > 1 THEN now() - make_interval(days => $3 - 1) END)""",
            incident, UNIT, day,
        )
    await con.execute("ANALYZE")


async def timed(run: Callable[[], Awaitable[T]], runs: int) -> tuple[float, T]:
    """The median milliseconds of ``runs`` runs, and the last run's result."""
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        result = await run()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples), result


async def replay_all(pool: asyncpg.Pool, after: int) -> list[events.Event]:
    """What the socket sends before going live: every event of the unit after ``after``, in pages of 500."""
    sent = after
    out: list[events.Event] = []
    while True:
        batch = await events.since(pool, sent, [f"unit:{UNIT}"], limit=500)
        out.extend(batch)
        if len(batch) < 500:
            return out
        sent = batch[-1].id


async def main(days: int, per_day: int, runs: int) -> None:
    async with migrated_database("psc119-bench-replay-") as (_, dsn):
        con = await db.connect(dsn)
        await fill(con, days, per_day)
        await con.close()
        pool = await db.create_pool(dsn, DatabaseSettings(pool_min=1, pool_max=2))
        try:
            full_ms, full = await timed(lambda: replay_all(pool, 0), runs)
            horizon_ms, horizon = await timed(lambda: unit_replay.horizon(pool, UNIT, 12.0), runs)
            tail_ms, tail = await timed(lambda: replay_all(pool, horizon), runs)
        finally:
            await pool.close()
    assert full[-len(tail):] == tail
    print(f"event log: {days * per_day} events over {days} days; unit {UNIT}: {len(full)} events")
    print(f"after=0 before: {len(full)} events replayed, {full_ms:.1f} ms")
    print(f"after=0 now:    {len(tail)} events replayed, horizon {horizon_ms:.1f} ms + replay {tail_ms:.1f} ms")
    print(f"events replayed: {len(tail) / len(full):.3f} of before; time: {(horizon_ms + tail_ms) / full_ms:.2f} of before")
    emit(Row(f"unit phone after=0 replay ({days * per_day} events)", horizon_ms + tail_ms, full_ms,
             "replay of every event of the unit", "ms"))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--per-day", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(main(args.days, args.per_day, args.runs))
