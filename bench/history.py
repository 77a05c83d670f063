"""A year of a busy district's work, written into a benchmark's database before it measures anything.

A server runs on a database that has taken calls for months, not on a new one: a statement that reads every row it
once had to (a scan, a plan made while the table was small) costs nothing on the demo region and grows with every
day in service. Each table is written as it would be after a year, every incident closed and its units back, and
analyzed as autovacuum would have: 100,000 calls (one every five minutes), an assignment each and four status
changes per assignment, 500,000 audit entries and 1,000,000 events.
"""

from __future__ import annotations

import time

import asyncpg

YEAR = """
INSERT INTO incidents (id, idempotency_key, request_digest, received_at, caller_phone, lat, lon, address, priority, status,
                       outcome, closed_at, assessed_at)
SELECT gen_random_uuid(), 'history-' || n, 'history', now() - make_interval(secs => n * 300), '0812' || (n % 50000),
       -6.3 + random() * 0.2 - 0.1, 106.7 + random() * 0.2 - 0.1, 'Jl. Lama', 'kuning', 'closed', 'emergency',
       now() - make_interval(secs => n * 300 - 3600), now() - make_interval(secs => n * 300)
FROM generate_series(1, 100000) AS n;

INSERT INTO assignments (incident_id, unit_id, assigned_at, ack_deadline, acknowledged_at, ended_at, end_reason)
SELECT i.id, u.id, i.received_at, i.received_at + interval '1 minute', i.received_at + interval '30 seconds', i.closed_at, 'completed'
FROM (SELECT id, received_at, closed_at, row_number() OVER () AS r FROM incidents WHERE request_digest = 'history') AS i
JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS r FROM units) AS u ON u.r = i.r % (SELECT count(*) FROM units);

INSERT INTO unit_status_log (unit_id, status, at, incident_id)
SELECT a.unit_id, s.status, a.assigned_at + make_interval(mins => s.k::int), a.incident_id
FROM assignments AS a, unnest(ARRAY['dispatched', 'on_scene', 'transporting', 'available']) WITH ORDINALITY AS s (status, k);

INSERT INTO audit_log (at, action, object, detail)
SELECT now() - make_interval(secs => n * 60), 'incident.update', 'incident:' || n, '{}' FROM generate_series(1, 500000) AS n;

INSERT INTO events (id, at, type, audience, payload)
SELECT n, now() - make_interval(secs => (1000001 - n) * 30), 'unit.status', ARRAY['role:operator'],
       jsonb_build_object('unit_id', 'history-' || (n % 500), 'incident_id', gen_random_uuid()::text, 'status', 'available')
FROM generate_series(1, 1000000) AS n;
SELECT setval('events_id_seq', 1000000);

ANALYZE;
"""


async def add_year(dsn: str) -> float:
    """Write `YEAR` into the database at ``dsn`` (its units already there); the seconds it took."""
    started = time.perf_counter()
    con = await asyncpg.connect(dsn)
    try:
        await con.execute(YEAR)
    finally:
        await con.close()
    return time.perf_counter() - started
