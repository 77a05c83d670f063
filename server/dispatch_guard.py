"""No double dispatch: the checks a dispatch passes before any unit is sent.

An operator's double key press, or a recommendation list that moved under the
operator, must never send two units. The request says which assignment version
of the incident the operator saw; any other is refused (409 ``stale``). A second
unit for a role already served must be asked for as ``additional`` (otherwise 409
``already_assigned``): the one unit sent without it besides the first is the
carrier a call needs once care has started and nobody serving can carry
(`dispatch.doctrine.Needs.carrier_next`). Both refusals change nothing and carry
the incident's current state so the console can show it again.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import asyncpg

from dispatch.doctrine import needs_from_capabilities
from server import incidents
from server.config import DispatchSettings
from server.errors import AlreadyAssigned, Conflict, Stale
from server.fleet import Fleet


@dataclasses.dataclass(frozen=True, slots=True)
class Refusal:
    stale: bool
    assigned_unit: str | None = None


async def check(
    con: asyncpg.Connection, incident: asyncpg.Record, unit: list[str] | None, expected_version: int | None, additional: bool
) -> Refusal | None:
    """Why sending a unit with capabilities ``unit`` (None: no such unit) must not go ahead (inside the
    transaction that locked the incident), or None."""
    if expected_version is not None and expected_version != incident["assignment_version"]:
        return Refusal(stale=True)
    if additional:
        return None
    serving = await con.fetch(
        """SELECT a.unit_id, u.capabilities FROM assignments a JOIN units u ON u.id = a.unit_id
           WHERE a.incident_id = $1 AND a.ended_at IS NULL ORDER BY a.id""", incident["id"],
    )
    if not serving:
        return None
    needs = needs_from_capabilities(incident["needs"])
    if unit is not None and needs.carrier_next(frozenset(r["capabilities"]) for r in serving) and needs.carrier(frozenset(unit)):
        return None  # the carrier the call still needs: a new role, not a second unit for one
    return Refusal(stale=False, assigned_unit=serving[0]["unit_id"])


async def state(pool: asyncpg.Pool, fleet: Fleet, settings: DispatchSettings, incident: asyncpg.Record) -> dict[str, Any]:
    """The incident's assignment version, the units serving it and both tiers of the recommendation without them, as of now."""
    async with pool.acquire() as con:
        version = await con.fetchval("SELECT assignment_version FROM incidents WHERE id = $1", incident["id"])
        serving = [r["unit_id"] for r in await con.fetch(
            "SELECT unit_id FROM assignments WHERE incident_id = $1 AND ended_at IS NULL ORDER BY id", incident["id"])]
    tiers = await incidents.recommend_for(fleet, settings, incident, exclude=tuple(serving))
    return {"assignment_version": version, "serving": serving, **tiers}


async def refused(refusal: Refusal, pool: asyncpg.Pool, fleet: Fleet, settings: DispatchSettings, incident: asyncpg.Record) -> Conflict:
    fresh = await state(pool, fleet, settings, incident)
    if refusal.stale:
        return Stale("the incident's units changed since this list was shown; look again and choose",
                     field="expected_version", extra=fresh)
    return AlreadyAssigned(f"unit {refusal.assigned_unit} is already on this incident; send another for that role only as additional",
                           field="additional", extra=fresh | {"unit_id": refusal.assigned_unit})
