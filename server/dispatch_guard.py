"""No double dispatch: the refusals a dispatch may meet, answered with the incident's state as of now.

An operator's double key press, or a recommendation list that moved under the
operator, must never send two units. The rules are the core's
(`dispatch.assignment.assign`): an assignment version other than the one the
operator saw is refused (409 ``stale``), and a second unit for a role already
served must be asked for as ``additional`` (otherwise 409 ``already_assigned``).
Both refusals change nothing and carry the incident's current state so the
console can show it again.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from dispatch.errors import AlreadyServed, StaleVersion
from server import incidents
from server.config import DispatchSettings
from server.errors import AlreadyAssigned, Conflict, Stale
from server.fleet import Fleet


async def state(pool: asyncpg.Pool, fleet: Fleet, settings: DispatchSettings, incident: asyncpg.Record) -> dict[str, Any]:
    """The incident's assignment version, the units serving it and both tiers of the recommendation without them, as of now."""
    async with pool.acquire() as con:
        version = await con.fetchval("SELECT assignment_version FROM incidents WHERE id = $1", incident["id"])
        serving = [r["unit_id"] for r in await con.fetch(
            "SELECT unit_id FROM assignments WHERE incident_id = $1 AND ended_at IS NULL ORDER BY id", incident["id"])]
    tiers = await incidents.recommend_for(fleet, settings, incident, exclude=tuple(serving))
    return {"assignment_version": version, "serving": serving, **tiers}


async def refused(
    refusal: StaleVersion | AlreadyServed, pool: asyncpg.Pool, fleet: Fleet, settings: DispatchSettings, incident: asyncpg.Record
) -> Conflict:
    fresh = await state(pool, fleet, settings, incident)
    if isinstance(refusal, StaleVersion):
        return Stale(str(refusal), field="expected_version", extra=fresh)
    return AlreadyAssigned(str(refusal), field="additional", extra=fresh | {"unit_id": refusal.serving})
