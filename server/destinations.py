"""Destination hospitals: ranking them from a place for a call type, and choosing one for an incident.

The console's hospital list and anything else that picks a hospital for a patient (a referral from a
puskesmas) rank through ``ranked``; every way a destination is set goes through ``choose``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg
from aiohttp import web

from dispatch.availability import Availability
from dispatch.eta import Leg
from dispatch.geo import Point, distance_m
from dispatch.hospitals import Hospital, rank_hospitals
from dispatch.units import UnitKind
from server import audit, events, hospital_availability, incidents, prearrival
from server.errors import InvalidField
from server.keys import CONFIG, FLEET, TRIAGE


async def ranked(
    app: web.Application, con: asyncpg.Connection | asyncpg.Pool, at: Point, call_type: str | None, *, service: str | None = None
) -> dict[str, Any]:
    """Hospitals from ``at`` by ambulance ETA, those with the service the call type needs (or ``service``) first (ready now
    before the others, dispatch/hospitals.py), each with its availability figures, with warnings."""
    triage = await app[TRIAGE].get()
    needed = triage.get(call_type).service if call_type is not None and call_type in triage else service
    rows = await con.fetch("SELECT code, name, lat, lon, specialties, services FROM facilities WHERE kind = 'hospital'")
    figures, now = await hospital_availability.load(con), await hospital_availability.now(con)
    found = [Hospital(h["code"], h["name"], Point(h["lat"], h["lon"]), frozenset(h["services"]), figures.get(h["code"], Availability()))
             for h in rows]
    fleet = app[FLEET]
    # Road times when a road service is configured; a hospital it cannot route (or all, when it fails) by straight line.
    places = [h.location for h in found]
    road = await fleet.road.legs_s([Leg(at, UnitKind.AMBULANCE, place) for place in places]) if fleet.road is not None else [None] * len(places)
    road_s = {place: seconds for place, seconds in zip(places, road, strict=True) if seconds is not None}
    stale_after = dt.timedelta(seconds=app[CONFIG].hospitals.availability_stale_s)

    def eta(scene: Point, hospital: Point) -> float:
        by_road = road_s.get(hospital)
        return by_road if by_road is not None else fleet.index.eta.eta_for_distance(distance_m(scene, hospital), UnitKind.AMBULANCE)

    ranking = rank_hospitals(at, found, needed_service=needed, eta=eta, now=now, stale_after=stale_after)
    by_code = {h["code"]: h for h in rows}
    hospitals = [
        {**dict(by_code[r.hospital.code]), "services": sorted(r.hospital.services),
         "distance_m": r.distance_m, "eta_s": r.eta_s, "road_eta": r.hospital.location in road_s,
         "capable": r.capable, "readiness": r.readiness.value,
         **hospital_availability.figures_json(sorted(r.hospital.services), r.hospital.availability, now, stale_after)}
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
