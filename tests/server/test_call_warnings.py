"""The incidents a call may repeat are read through indexes: the open ones near the call or with its number, the
closed ones with its number; never every incident still open (hundreds in a flood), each tested for its place."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from dispatch.geo import Point
from server import call_warnings
from server.config import DispatchSettings
from server.statements import Params

SCENE = Point(-6.2931, 106.7101)
PHONE = "0812-3456-7890"
OPEN_ELSEWHERE = 2_000


def rows_read(plan: dict[str, Any]) -> int:
    """The table rows the plan's scans read: those they returned and those their filters threw away."""
    own = plan.get("Actual Rows", 0) + plan.get("Rows Removed by Filter", 0) if "Relation Name" in plan else 0
    return int(own + sum(rows_read(child) for child in plan.get("Plans", ())))


async def add(con: asyncpg.Connection, lat: float, lon: float, phone: str = "0800-0000-0000", closed: bool = False) -> uuid.UUID:
    key = uuid.uuid4()
    await con.execute(
        """INSERT INTO incidents (id, idempotency_key, request_digest, caller_phone, priority, lat, lon, closed_at, status)
           VALUES ($1, $6, 'x', $2, 'kuning', $3, $4, CASE WHEN $5 THEN now() END, CASE WHEN $5 THEN 'closed' ELSE 'open' END)""",
        key, phone, lat, lon, closed, str(key),
    )
    return key


async def _flood_and_read(con: asyncpg.Connection) -> tuple[set[uuid.UUID], str, Params]:
    """Open incidents all over the province, none near the scene nor with the caller's number, and a few that match:
    (those a call at the scene must find, the read, its values)."""
    await con.execute(
        """INSERT INTO incidents (id, idempotency_key, request_digest, caller_phone, priority, lat, lon)
           SELECT gen_random_uuid(), 'far-' || n, 'x', '0800-' || n, 'kuning', -6.9 + (n % 50) * 0.02, 106.1 + (n / 50) * 0.02
           FROM generate_series(1, $1) AS n""",
        OPEN_ELSEWHERE,
    )
    near = {await add(con, SCENE.lat + 0.001, SCENE.lon), await add(con, SCENE.lat, SCENE.lon - 0.001)}
    same_number = {await add(con, -7.5, 108.0, PHONE), await add(con, -7.6, 108.1, PHONE, closed=True)}
    await add(con, SCENE.lat + 0.001, SCENE.lon, closed=True)  # near, but closed and another number: no candidate
    params = Params()
    sql = call_warnings.sql(params, "now()", uuid.uuid4(), PHONE, SCENE, call_warnings.rules_of(DispatchSettings()))
    return near | same_number, sql, params


async def _rows_read(con: asyncpg.Connection, sql: str, params: Params, mode: str) -> int:
    await con.execute(f"SET plan_cache_mode = {mode}")
    return rows_read((await con.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", *params.values))[0]["Plan"])


async def test_a_call_reads_the_incidents_near_it_or_with_its_number_not_every_open_one(con: asyncpg.Connection) -> None:
    wanted, sql, params = await _flood_and_read(con)
    found = {r["id"] for r in await con.fetch(sql, *params.values)}
    assert found == wanted

    # As the server runs it: prepared, its plan generic after five runs, on statistics taken before the rows came
    # (forced generic here), and on fresh ones.
    for analyzed in (False, True):
        if analyzed:
            await con.execute("ANALYZE incidents")
        read = await _rows_read(con, sql, params, "force_generic_plan")
        assert read <= 20, f"read {read} rows of {OPEN_ELSEWHERE + 5} to find {len(found)} (analyzed: {analyzed})"


async def test_a_flood_on_statistics_of_closed_calls_is_read_by_place_too(con: asyncpg.Connection) -> None:
    # A year of calls, all closed when the statistics were last taken: PostgreSQL expects about no open incident,
    # and a flood's calls come faster than autovacuum analyzes a large table again.
    await con.execute(
        """INSERT INTO incidents (id, idempotency_key, request_digest, caller_phone, priority, lat, lon, closed_at, status)
           SELECT gen_random_uuid(), 'past-' || n, 'x', '0811-' || n, 'kuning', -6.3 + (n % 100) * 0.001, 106.7 + (n / 100) * 0.001,
                  now() - make_interval(hours => n), 'closed'
           FROM generate_series(1, 20000) AS n""",
    )
    await con.execute("ANALYZE incidents")
    wanted, sql, params = await _flood_and_read(con)
    assert {r["id"] for r in await con.fetch(sql, *params.values)} == wanted
    for mode in ("force_custom_plan", "force_generic_plan"):
        read = await _rows_read(con, sql, params, mode)
        assert read <= 20, f"read {read} rows of {OPEN_ELSEWHERE + 5} open to find {len(wanted)} ({mode})"
