"""Benchmark: the retention sweep over a busy centre's old data, and what live writes feel meanwhile.

Fills a real (embedded) PostgreSQL with ``--calls`` closed calls five years old (each with the two
events that carry its intake), ``--tracks`` GPS points and ``--audit`` audit entries older than their
time. Then, in the same process, runs the sweep twice on identical data: in batches of
``retention.batch`` (the default, 500) and in one transaction per class (a batch larger than any
class: the baseline), while a writer keeps doing what a live centre does (append an event, a track
point and an audit entry, one transaction each). Prints the sweep's time and rows per second, and
the writer's latency p50 / p99 / max with no sweep, during each sweep, and the ratios. Asserts only
the counts, never a time.

    python bench/bench_retention.py [--calls 20000] [--tracks 200000] [--audit 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import statistics
import time

import asyncpg
from results import Row, emit

from bench_support import migrated_database
from server import db, retention
from server.config import Config, RetentionSettings, ServerSettings

UNIT = "bench-01"


async def fill(con: asyncpg.Connection, calls: int, tracks: int, audits: int) -> None:
    await con.execute("TRUNCATE unit_track, incidents, events, retention_runs CASCADE")
    await con.execute(
        """INSERT INTO units (id, callsign, kind, status, base_lat, base_lon) VALUES ($1, 'B-01', 'motorbike', 'available', -6.3, 106.7)
           ON CONFLICT DO NOTHING""", UNIT,
    )
    await con.execute(
        """INSERT INTO incidents (id, idempotency_key, request_digest, caller_phone, caller_name, address, complaint, priority,
                                  status, outcome, received_at, first_dispatched_at, closed_at, lat, lon)
           SELECT gen_random_uuid(), 'k' || i, 'd' || i, '0812' || lpad(i::text, 8, '0'), 'Caller ' || i, 'Jl. ' || i, 'nyeri dada',
                  'merah', 'closed', 'emergency', now() - interval '2000 days', now() - interval '2000 days' + interval '40 s',
                  now() - interval '2000 days' + interval '1 hour', -6.2695, 106.707
           FROM generate_series(1, $1) AS i""",
        calls,
    )
    await con.execute(
        """INSERT INTO events (id, at, type, audience, payload)
           SELECT row_number() OVER (), received_at, t, ARRAY['role:operator'],
                  jsonb_build_object('incident_id', id::text, 'incident', jsonb_build_object('caller_phone', caller_phone))
           FROM incidents, unnest(ARRAY['call.received', 'unit.dispatched']) AS t""",
    )
    await con.execute("SELECT setval('events_id_seq', max(id)) FROM events")  # ids written above, not drawn
    await con.execute(
        """INSERT INTO unit_track (unit_id, at, lat, lon)
           SELECT $1, now() - interval '400 days' + make_interval(secs => i * 15), -6.27, 106.7 FROM generate_series(1, $2) AS i""",
        UNIT, tracks,
    )
    await con.execute("SET session_replication_role = replica")  # old audit entries are inserted as they were
    await con.execute("DELETE FROM audit_log")
    await con.execute(
        """INSERT INTO audit_log (at, username, action, object)
           SELECT now() - interval '800 days' + make_interval(secs => i), 'operator', 'incident.read', 'incident:' || i
           FROM generate_series(1, $1) AS i""",
        audits,
    )
    await con.execute("SET session_replication_role = DEFAULT")
    await con.execute("ANALYZE")


async def writer(dsn: str, stop: asyncio.Event, samples: list[float]) -> None:
    con = await db.connect(dsn)
    try:
        while not stop.is_set():
            start = time.perf_counter()
            async with con.transaction():
                await con.execute("SELECT append_event('unit.status', ARRAY['role:operator'], '{}'::jsonb)")
                await con.execute("INSERT INTO unit_track (unit_id, at, lat, lon) VALUES ($1, clock_timestamp(), -6.27, 106.7)", UNIT)
                await con.execute("INSERT INTO audit_log (username, action) VALUES ('operator', 'unit.status')")
            samples.append((time.perf_counter() - start) * 1000)
            await asyncio.sleep(0.002)
    finally:
        await con.close()


def figures(samples: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))], ordered[-1]


async def measure(dsn: str, config: Config | None, idle_s: float) -> tuple[float, dict[str, int] | None, list[float]]:
    """Seconds of the sweep (or ``idle_s`` of nothing when ``config`` is None), its counts and the writer's latencies."""
    stop, samples = asyncio.Event(), list[float]()
    task = asyncio.create_task(writer(dsn, stop, samples))
    await asyncio.sleep(0.2)
    samples.clear()
    start = time.perf_counter()
    counts = None
    if config is None:
        await asyncio.sleep(idle_s)
    else:
        con = await db.connect(dsn)
        try:
            counts = await retention.sweep(con, config, dt.datetime.now(dt.UTC))
        finally:
            await con.close()
    took = time.perf_counter() - start
    stop.set()
    await task
    return took, counts, samples


async def main(calls: int, tracks: int, audits: int) -> None:
    async with migrated_database("psc119-bench-retention-") as (root, dsn):
        con = await db.connect(dsn)
        await fill(con, calls, tracks, audits)
        _, _, idle = await measure(dsn, None, 3.0)
        results = {}
        for name, batch in (("batches of 500", 500), ("one transaction", 100_000)):
            await fill(con, calls, tracks, audits)
            config = Config(server=ServerSettings(var_dir=str(root / "var")), retention=RetentionSettings(batch=batch))
            results[name] = await measure(dsn, config, 0)
        await con.close()
    rows = calls + calls * 2 + tracks + audits
    print(f"old data: {calls} closed calls ({2 * calls} events with intake), {tracks} track points, {audits} audit entries")
    p50, p99, most = figures(idle)
    print(f"writer, no sweep:            p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  max {most:7.2f} ms  ({len(idle)} writes)")
    emit_rows = []
    for name, (took, counts, samples) in results.items():
        assert counts is not None and counts["incidents"] == calls and counts["tracks"] >= tracks and counts["audit"] >= audits
        w50, w99, wmax = figures(samples)
        print(f"writer, sweep {name:<15}: p50 {w50:6.2f} ms  p99 {w99:6.2f} ms  max {wmax:7.2f} ms  ({len(samples)} writes)"
              f"  ratios p99 {w99 / p99:5.2f} max {wmax / most:5.2f};  sweep {took:6.2f} s, {rows / took:8.0f} rows/s")
        emit_rows.append(Row(f"live write p99 during the retention sweep, {name} ({rows} old rows)", w99, p99, "no sweep", "ms"))
    emit(*emit_rows)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--tracks", type=int, default=200000)
    parser.add_argument("--audit", type=int, default=100000)
    args = parser.parse_args()
    asyncio.run(main(args.calls, args.tracks, args.audit))
