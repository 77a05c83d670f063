"""A call's duplicate and prank warnings: the incidents that could match, read in one statement, judged by the core.

The read (`sql`) is embedded in the statement of its caller: at intake, the one that also reads the time the
call is taken at (`server.call_intake`); for a call assessed after it was stored, one of its own with the
stored time (`server.incidents.assess`).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from typing import Any

import asyncpg

from dispatch.duplicates import DuplicateRules, OpenIncident, find_duplicates, prank_flag
from dispatch.geo import Point
from dispatch.ids import IncidentId
from server.config import DispatchSettings
from server.statements import Params

# Only incidents that could match, each kind through an index: those with the same number, open or closed within
# the caller window, and the open ones inside a box around the radius (whatever their age: the windows and the exact
# geodesic test are the core's, and a condition on the time would let the planner read them through the open
# incidents' time index, which holds every open one); and the number's recent pranks (prank true).
# ``{at}``: the call's time.
CANDIDATES = """SELECT false AS prank, id, received_at, caller_phone, lat, lon, closed_at FROM incidents
    WHERE id <> {incident}
      AND ((caller_phone = {phone} AND (closed_at IS NULL
                                        OR closed_at BETWEEN {at} - {caller_window}::interval AND {at} + {caller_window}::interval))
        OR (closed_at IS NULL AND lat BETWEEN {lat}::float8 - {box_lat}::float8 AND {lat}::float8 + {box_lat}::float8
            AND lon BETWEEN {lon}::float8 - {box_lon}::float8 AND {lon}::float8 + {box_lon}::float8))
    UNION ALL
    SELECT true, id, received_at, caller_phone, lat, lon, closed_at FROM incidents
    WHERE caller_phone = {phone} AND outcome = 'prank' AND received_at > now() - {prank_window}::interval"""


def rules_of(settings: DispatchSettings) -> DuplicateRules:
    return DuplicateRules(
        radius_m=settings.duplicate_radius_m,
        window=dt.timedelta(seconds=settings.duplicate_window_s),
        caller_window=dt.timedelta(seconds=settings.same_caller_window_s),
        prank_threshold=settings.prank_threshold,
        prank_window=dt.timedelta(days=settings.prank_window_days),
    )


def sql(params: Params, at: str, incident_id: Any, phone: str, location: Point | None, rules: DuplicateRules) -> str:
    """`CANDIDATES` for the call ``incident_id`` taken at ``at`` (an SQL expression), its values added to ``params``."""
    box_lat, box_lon = _box_degrees(location, rules.radius_m)
    return CANDIDATES.format(
        at=at, incident=params.add(incident_id), phone=params.add(phone),
        lat=params.add(location.lat if location else None), lon=params.add(location.lon if location else None),
        box_lat=params.add(box_lat), box_lon=params.add(box_lon), caller_window=params.add(rules.caller_window),
        prank_window=params.add(rules.prank_window),
    )


def _box_degrees(location: Point | None, radius_m: float) -> tuple[float, float]:
    """Half-widths in degrees of a box that surely contains the circle (10% margin); zero without a location."""
    if location is None:
        return 0.0, 0.0
    lat_deg = radius_m * 1.1 / 110_574  # the shortest a degree of latitude gets
    return lat_deg, lat_deg / max(math.cos(math.radians(abs(location.lat) + lat_deg)), 1e-6)


def warnings(
    rows: Iterable[asyncpg.Record], phone: str, location: Point | None, received_at: dt.datetime, now: dt.datetime, rules: DuplicateRules,
) -> list[dict[str, Any]]:
    """The warnings from the rows `CANDIDATES` read (rows without an ``id`` are skipped: an outer join found none)."""
    others: list[asyncpg.Record] = []
    prank_times: list[asyncpg.Record] = []
    for r in rows:
        if r["id"] is not None:
            (prank_times if r["prank"] else others).append(r)
    open_incidents = [
        OpenIncident(IncidentId(str(o["id"])), o["received_at"], o["caller_phone"],
                     Point(o["lat"], o["lon"]) if o["lat"] is not None else None, o["closed_at"])
        for o in others
    ]
    found: list[dict[str, Any]] = [
        {"kind": "duplicate", **w.to_dict()} for w in find_duplicates(phone, location, received_at, open_incidents, rules)
    ]
    flag = prank_flag(phone, [r["received_at"] for r in prank_times], now, rules)
    if flag is not None:
        found.append({"kind": "repeat_prank", "prank_count": flag.prank_count, "since": flag.since.isoformat()})
    return found
