"""Statements run at every dispatch keep one generic plan: PostgreSQL plans them once per connection,
not at every execution, and the plan kept is the index plan.

PostgreSQL plans the first five executions of a prepared statement for their parameters (custom plans); from the
sixth it keeps the generic plan unless the custom ones looked cheaper. `pg_prepared_statements` counts both."""

from __future__ import annotations

import asyncpg

from server import bus, db, events
from server.bus import EventBus

RUNS = 12


async def _plans(con: asyncpg.Connection, fragment: str) -> asyncpg.Record:
    """The name and plan counts of the one statement prepared on ``con`` whose text holds ``fragment``."""
    rows = await con.fetch(
        "SELECT name, generic_plans, custom_plans FROM pg_prepared_statements WHERE strpos(statement, $1) > 0", fragment
    )
    assert len(rows) == 1, rows
    return rows[0]


async def _plan_of(con: asyncpg.Connection, name: str, literals: str) -> str:
    """The plan ``con`` runs its prepared statement ``name`` with for these arguments (SQL literals)."""
    return "\n".join(r[0] for r in await con.fetch(f"EXPLAIN EXECUTE {name}({literals})"))


async def test_the_bus_plans_its_read_once_and_reads_by_the_index(demo_dsn: str) -> None:
    writer = await db.connect(demo_dsn)
    listener = await bus.listener(demo_dsn)
    try:
        async with writer.transaction():
            for n in range(3000):
                await events.append(writer, "test.event", {"n": n}, ["role:operator"])
        await writer.execute("ANALYZE events")
        newest = await events.last_id(writer)
        for n in range(RUNS):
            assert [e.id for e in await EventBus._fetch_after(listener, newest - 1 - n)][0] == newest - n
        read = await _plans(listener, "FROM events WHERE id > $1 ORDER BY id")
        plan = await _plan_of(listener, read["name"], str(newest - 1))
    finally:
        await listener.close()
        await writer.close()
    assert (read["generic_plans"], read["custom_plans"]) == (RUNS, 0)
    assert "Index Scan using events_pkey" in plan and "Sort" not in plan, plan
