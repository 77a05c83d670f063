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


async def test_a_call_reads_the_incidents_near_it_or_with_its_number_not_every_open_one(con: asyncpg.Connection) -> None:
    # Open incidents all over the province, none near the scene nor with the caller's number.
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
    found = {r["id"] for r in await con.fetch(sql, *params.values)}
    assert found == near | same_number

    # As the server runs it: prepared, its plan generic after five runs, on statistics taken before the rows came
    # (forced generic here), and on fresh ones.
    await con.execute("SET plan_cache_mode = force_generic_plan")
    for analyzed in (False, True):
        if analyzed:
            await con.execute("ANALYZE incidents")
        plan = (await con.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", *params.values))[0]["Plan"]
        assert rows_read(plan) <= 20, f"read {rows_read(plan)} rows of {OPEN_ELSEWHERE + 5} to find {len(found)} (analyzed: {analyzed})"

