"""Statements run at every dispatch or chat keep one generic plan: PostgreSQL plans them once per connection,
not at every execution, and the plan kept is the index plan.

PostgreSQL plans the first five executions of a prepared statement for their parameters (custom plans); from the
sixth it keeps the generic plan unless the custom ones looked cheaper. `pg_prepared_statements` counts both."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from pathlib import Path

import asyncpg

from server import bus, consult_chat, db, events, phone_presence
from server.bus import EventBus
from server.config import DatabaseSettings
from signaling.ids import UserId
from tests.server.test_consults import close_api
from tests.server.test_socket_flood import room, room_api_with

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


async def test_the_bus_reads_by_the_index_though_its_plan_was_made_on_a_small_log(demo_dsn: str) -> None:
    # A new database: the bus's first read, at start-up, plans on an events table of a few rows, where a scan of the
    # whole table and a sort cost least; the plan is kept as the log grows by thousands before any ANALYZE.
    writer = await db.connect(demo_dsn)
    listener = await bus.listener(demo_dsn)
    try:
        await EventBus._fetch_after(listener, await events.last_id(writer))
        async with writer.transaction():
            for n in range(3000):
                await events.append(writer, "test.event", {"n": n}, ["role:operator"])
        newest = await events.last_id(writer)
        assert [e.id for e in await EventBus._fetch_after(listener, newest - 1)] == [newest]
        read = await _plans(listener, "FROM events WHERE id > $1 ORDER BY id")
        plan = await _plan_of(listener, read["name"], str(newest - 1))
    finally:
        await listener.close()
        await writer.close()
    assert read["custom_plans"] == 0
    assert "Index Scan using events_pkey" in plan and "Sort" not in plan, plan


async def test_a_phone_presence_read_is_planned_generic_after_five_and_reads_by_the_index(con: asyncpg.Connection) -> None:
    # A fleet as the dispatch benchmark's, each unit's phone on a socket and its previous one closed: the statistics
    # price one unit's read well below the generic plan's guess of ten units.
    await con.execute("""INSERT INTO units (id, callsign, kind, capabilities, base_lat, base_lon, kelurahan)
                         SELECT id || '-' || n, callsign || '-' || n, kind, capabilities, base_lat, base_lon, kelurahan
                         FROM units, generate_series(1, 4) AS n""")
    await con.execute("""INSERT INTO phone_sockets (id, unit_id, closed_at)
                         SELECT gen_random_uuid(), id, closed_at FROM units, (VALUES (now()), (NULL)) AS s (closed_at)""")
    await con.execute("ANALYZE phone_sockets")
    units = [r["id"] for r in await con.fetch("SELECT id FROM units ORDER BY id LIMIT 2")]
    for n in range(RUNS):
        wanted = units[: 1 + n % 2]  # a phone's own change, a dispatched unit, a short list of recommendations
        found = await phone_presence.phones(con, wanted, 60.0)
        assert sorted(found) == wanted and all(p["connected"] for p in found.values())
    read = await _plans(con, "FROM phone_sockets WHERE unit_id = ANY(")
    plan = await _plan_of(con, read["name"], f"ARRAY['{units[0]}'], 60")
    assert read["custom_plans"] <= 5 and read["generic_plans"] == RUNS - read["custom_plans"]
    assert "Index Scan on phone_sockets_unit" in plan, plan


async def test_storing_chat_is_planned_generic_after_five_and_finds_a_resend_by_its_index(demo_dsn: str, tmp_path: Path) -> None:
    api = await room_api_with(demo_dsn, tmp_path)
    try:
        consult_id, _pk, _sp = await room(api)
    finally:
        await close_api(api)
    pool = await db.create_pool(demo_dsn, DatabaseSettings(url=demo_dsn, pool_min=1, pool_max=1))
    writer = consult_chat.ChatWriter(pool, max_stored=100)
    running = asyncio.create_task(writer.run())
    try:
        async with pool.acquire() as con:
            member = await con.fetchval("SELECT requester FROM consults WHERE id = $1", uuid.UUID(consult_id))
        # One message a batch, as doctors type: each batch its own execution of the statement.
        stored = [await writer.submit(consult_id, UserId(str(member)), f"m{n}", f"halo {n}", None) for n in range(RUNS)]
        assert len(set(stored)) == RUNS
        async with pool.acquire() as con:
            insert = await _plans(con, "INSERT INTO consult_chat")
            literals = f"ARRAY['{consult_id}']::uuid[], ARRAY[{member}]::bigint[], ARRAY['m0'], ARRAY['halo 0'], ARRAY['r'], 100"
            plan = await _plan_of(con, insert["name"], literals)
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        await pool.close()
    assert insert["custom_plans"] <= 5 and insert["generic_plans"] == RUNS - insert["custom_plans"]
    assert "Index Scan using consult_chat_client_id" in plan, plan
