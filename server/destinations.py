"""Destination hospitals: ranking them from a place for a call type, and choosing one for an incident.

The console's hospital list and anything else that picks a hospital for a patient (a referral from a
puskesmas) rank through ``ranked``; every way a destination is set goes through ``choose``.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp import web

from dispatch.geo import Point, distance_m
from dispatch.hospitals import Hospital, rank_hospitals
from dispatch.units import UnitKind
from server import audit, events, incidents, prearrival
from server.errors import InvalidField
from server.keys import FLEET, TRIAGE


async def ranked(app: web.Application, con: asyncpg.Connection | asyncpg.Pool, at: Point, call_type: str | None) -> dict[str, Any]:
    """Hospitals from ``at`` by ambulance ETA, those with the service the call type needs first, with warnings."""
    triage = await app[TRIAGE].get()
    needed = triage.get(call_type).service if call_type is not None and call_type in triage else None
    rows = await con.fetch("SELECT code, name, lat, lon, specialties, services FROM facilities WHERE kind = 'hospital'")
    found = [Hospital(h["code"], h["name"], Point(h["lat"], h["lon"]), frozenset(h["services"])) for h in rows]
    eta = app[FLEET].index.eta
    ranking = rank_hospitals(
        at, found, needed_service=needed,
        eta=lambda scene, hospital: eta.eta_for_distance(distance_m(scene, hospital), UnitKind.AMBULANCE),
    )
    by_code = {h["code"]: h for h in rows}
    hospitals = [
        {**dict(by_code[r.hospital.code]), "services": sorted(r.hospital.services),
         "distance_m": r.distance_m, "eta_s": r.eta_s, "capable": r.capable}
        for r in ranking.hospitals
    ]
    return {"hospitals": hospitals, "needed_service": ranking.needed_service,
            "warnings": [w.to_dict() for w in ranking.warnings]}


async def choose(con: asyncpg.Connection, actor: audit.Actor, incident_id: str, facility: str) -> asyncpg.Record:
    """Set the incident's destination hospital, in the caller's transaction; the incident row after."""
    row = await incidents.get(con, incident_id, lock=True)
    if not await con.fetchval("SELECT 1 FROM facilities WHERE code = $1 AND kind = 'hospital'", facility):
        raise InvalidField(f"no hospital {facility!r}", field="facility")
    updated: asyncpg.Record = await con.fetchrow(
        f"UPDATE incidents SET destination = $2 WHERE id = $1 RETURNING {incidents.INCIDENT_COLUMNS}", row["id"], facility
    )
    await events.append(
        con, "incident.destination",
        {"incident_id": str(row["id"]), "destination": facility, "by": actor.username, **incidents.state_of(updated)},
        [incidents.OPERATORS, *await incidents.active_unit_audience(con, row["id"])],
    )
    await audit.record(con, actor, "incident.destination", f"incident:{row['id']}", {"facility": facility})
    await prearrival.destination_set(con, actor, row["id"], facility)
    return updated
