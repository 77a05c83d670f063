"""A unit's event never takes the fleet index back to an older GPS fix than the one it has.

The race, made deterministic by choosing the order: the phone sends a fix, an admin changes the
unit's crew, and the crew event, whose unit row was read before the fix was written, reaches the
index after the fix. A call at the new fix must rank that unit from there (distance about 0).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import AsyncIterator

import asyncpg
import pytest

from dispatch.geo import Point
from server.events import Event
from server.fleet import UNIT_COLUMNS, unit_snapshot
from server.keys import FLEET, POSITIONS
from server.positions import Fix
from tests.conftest import Api, app_config, start_api
from tests.server.dispatch_support import call_body

# Far from the unit's base and any other unit: in Serpong, west of the demo region's middle.
NEW_FIX = {"lat": -6.3170, "lon": 106.6650}


@pytest.fixture
async def held(demo_dsn: str) -> AsyncIterator[Api]:
    """The app with its position flush held off (an hour): fixes stay in the batch."""
    base = app_config(demo_dsn)
    client = await start_api(demo_dsn, dataclasses.replace(base, dispatch=dataclasses.replace(base.dispatch, position_flush_s=3600)))
    yield client
    await client.session.close()
    await client.server.close()


async def far_unit(con: asyncpg.Connection) -> asyncpg.Record:
    """An available unit whose known position is far from NEW_FIX."""
    row = await con.fetchrow(
        f"""SELECT {UNIT_COLUMNS} FROM units WHERE status = 'available'
            ORDER BY (base_lat - $1) ^ 2 + (base_lon - $2) ^ 2 DESC LIMIT 1""",
        NEW_FIX["lat"], NEW_FIX["lon"],
    )
    assert row is not None
    return row


async def crew_change_then_call(api: Api, con: asyncpg.Connection, flush: bool) -> dict[str, object]:
    app = api.server.app
    admin, operator = await api.login("admin"), await api.login("operator")
    before = await far_unit(con)  # the row as a crew change that reads it before the fix sees it
    unit_id = before["id"]
    app[POSITIONS].submit(Fix(unit_id, Point(**NEW_FIX), dt.datetime.now(dt.UTC), 5.0))
    if flush:
        await app[POSITIONS].flush()
        await app[FLEET].current()
    status, body = await api.call("PATCH", f"/api/units/{unit_id}", admin, json={"crew": ["Budi", "Sari"]})
    assert status == 200, body
    await app[FLEET].current()
    # The crew event read before the fix, delivered after it (the order the race produced).
    late = unit_snapshot(before) | {"crew": ["Budi", "Sari"]}
    app[FLEET].apply_event(Event(app[FLEET].applied_id + 1, dt.datetime.now(dt.UTC), "unit.updated", frozenset(), {"unit_id": unit_id, "unit": late}))
    status, created = await api.call("POST", "/api/calls", operator, json=call_body(location=NEW_FIX, call_type=None, priority="kuning"))
    assert status == 201, created
    ranked = {r["unit_id"]: r for r in created["recommendations"]}
    assert unit_id in ranked, created["recommendations"]
    return ranked[unit_id]


async def test_a_flushed_fix_outlives_an_older_crew_event(api: Api, con: asyncpg.Connection) -> None:
    ranked = await crew_change_then_call(api, con, flush=True)
    assert ranked["distance_m"] < 5, ranked  # ranked from the new fix, not the one the crew event carried


async def test_a_fix_still_in_the_batch_ranks_the_unit_before_the_flush(held: Api, con: asyncpg.Connection) -> None:
    ranked = await crew_change_then_call(held, con, flush=False)
    assert ranked["distance_m"] < 5, ranked
    stored = await con.fetchval("SELECT position_lat FROM units WHERE id = $1", ranked["unit_id"])
    assert stored != NEW_FIX["lat"]  # not written yet: the index had the fix from the phone's socket
