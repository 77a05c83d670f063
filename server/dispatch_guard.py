"""No double dispatch: the checks a dispatch passes before any unit is sent.

An operator's double key press, or a recommendation list that moved under the
operator, must never send two units. The request says which assignment version
of the incident the operator saw; any other is refused (409 ``stale``). A unit
for an incident that already has one must be asked for as ``additional``
(otherwise 409 ``already_assigned``). Both refusals change nothing and carry
the incident's current state so the console can show it again.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import asyncpg

from dispatch.triage import TriageTable
from server import incidents
from server.config import DispatchSettings
from server.errors import AlreadyAssigned, Conflict, Stale
from server.fleet import Fleet


@dataclasses.dataclass(frozen=True, slots=True)
class Refusal:
    stale: bool
    assigned_unit: str | None = None


async def check(con: asyncpg.Connection, incident: asyncpg.Record, expected_version: int | None, additional: bool) -> Refusal | None:
    """Why the dispatch must not go ahead (inside the transaction that locked the incident), or None."""
    if expected_version is not None and expected_version != incident["assignment_version"]:
        return Refusal(stale=True)
    if not additional:
        serving = await con.fetchval(
            "SELECT unit_id FROM assignments WHERE incident_id = $1 AND ended_at IS NULL ORDER BY id LIMIT 1", incident["id"]
        )
        if serving is not None:
            return Refusal(stale=False, assigned_unit=serving)
    return None


async def state(
    pool: asyncpg.Pool, fleet: Fleet, settings: DispatchSettings, triage: TriageTable, incident: asyncpg.Record
) -> dict[str, Any]:
    """The incident's assignment version, the units serving it and the recommendation without them, as of now."""
    async with pool.acquire() as con:
        version = await con.fetchval("SELECT assignment_version FROM incidents WHERE id = $1", incident["id"])
        serving = [r["unit_id"] for r in await con.fetch(
            "SELECT unit_id FROM assignments WHERE incident_id = $1 AND ended_at IS NULL ORDER BY id", incident["id"])]
    recommendations = await incidents.recommend_for(fleet, settings, incident, triage, exclude=tuple(serving))
    return {"assignment_version": version, "serving": serving, "recommendations": recommendations}


async def refused(
    refusal: Refusal, pool: asyncpg.Pool, fleet: Fleet, settings: DispatchSettings, triage: TriageTable, incident: asyncpg.Record
) -> Conflict:
    fresh = await state(pool, fleet, settings, triage, incident)
    if refusal.stale:
        return Stale("the incident's units changed since this list was shown; look again and choose",
                     field="expected_version", extra=fresh)
    return AlreadyAssigned(f"unit {refusal.assigned_unit} is already on this incident; send another only as additional",
                           field="additional", extra=fresh | {"unit_id": refusal.assigned_unit})
