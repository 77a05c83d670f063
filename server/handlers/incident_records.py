"""Reading incidents: lists, one incident, its timeline, the EIDO export, response-time metrics.

Incidents carry the caller's name and number, so every read is audited.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from typing import Any, Literal

import asyncpg
import pydantic
from aiohttp import web

from dispatch.call import Call
from dispatch.eido import incident_to_eido
from dispatch.geo import Point
from dispatch.ids import IncidentId, UnitId
from dispatch.incident import Incident, IncidentState
from dispatch.metrics import Handover, IncidentTimes, intervals, nfpa1225_check, offload_by_hospital, summarize_intervals
from dispatch.outcome import Outcome
from dispatch.priority import Priority
from dispatch.timeline import TimelineEntry
from server import audit, incidents
from server.api_schemas import INCIDENT, OBJECT, array, obj
from server.assignments import ASSIGNMENT_COLUMNS, assignment_json
from server.fleet import UNIT_COLUMNS, unit_from_row
from server.handlers.auth import actor_of
from server.keys import CONFIG, POOL, TRIAGE
from server.roles import Role
from server.routing import Routes, json_response, read_query
from server.strict_input import Instant

routes = Routes("incidents")
READERS = frozenset({Role.OPERATOR, Role.ADMIN})


class IncidentQuery(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    status: Literal["open", "closed", "all"] = "open"
    priority: Literal["merah", "kuning", "hijau"] | None = None
    kecamatan: str | None = pydantic.Field(default=None, max_length=64)
    since: Instant | None = None
    until: Instant | None = None
    limit: int = pydantic.Field(default=200, ge=1, le=1000)


class MetricsQuery(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    since: Instant | None = None
    until: Instant | None = None


@routes.route("GET", "/api/incidents", roles=READERS, summary="Incidents, highest priority then oldest first", query=IncidentQuery, returns={200: obj(incidents=array(INCIDENT))})
async def list_incidents(request: web.Request) -> web.Response:
    q = read_query(request, IncidentQuery)
    pool = request.app[POOL]
    rows = await pool.fetch(
        f"""SELECT {incidents.INCIDENT_COLUMNS} FROM incidents
            WHERE ($1 = 'all' OR ($1 = 'open') = (closed_at IS NULL))
              AND ($2::text IS NULL OR priority = $2) AND ($3::text IS NULL OR kecamatan = $3)
              AND ($4::timestamptz IS NULL OR received_at >= $4) AND ($5::timestamptz IS NULL OR received_at < $5)
            ORDER BY array_position(ARRAY['merah', 'kuning', 'hijau'], priority), received_at
            LIMIT $6""",
        q.status, q.priority, q.kecamatan, q.since, q.until, q.limit,
    )
    serving: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for a in await _assignments(pool, [r["id"] for r in rows], active_only=True):
        serving[a["incident_id"]].append(a)
    await audit.record(pool, actor_of(request), "incident.list", None, {"count": len(rows), "status": q.status})
    return json_response({"incidents": [
        incidents.incident_json(r) | {"assignments": serving[str(r["id"])]} for r in rows
    ]})


async def _assignments(con: asyncpg.Connection | asyncpg.Pool, incident_keys: list[Any], *, active_only: bool) -> list[dict[str, Any]]:
    rows = await con.fetch(
        f"""SELECT {', '.join('a.' + c.strip() for c in ASSIGNMENT_COLUMNS.split(','))}, u.callsign, u.kind
            FROM assignments a JOIN units u ON u.id = a.unit_id
            WHERE a.incident_id = ANY($1::uuid[]) AND (NOT $2 OR a.ended_at IS NULL) ORDER BY a.id""",
        incident_keys, active_only,
    )
    return [assignment_json(a) | {"callsign": a["callsign"], "kind": a["kind"]} for a in rows]


@routes.route("GET", "/api/incidents/{id}", roles=READERS, summary="One incident with its assignments", returns={200: obj(incident=INCIDENT, assignments=array())})
async def get_incident(request: web.Request) -> web.Response:
    pool = request.app[POOL]
    row = await incidents.get(pool, request.match_info["id"])
    assigned = await _assignments(pool, [row["id"]], active_only=False)
    await audit.record(pool, actor_of(request), "incident.read", f"incident:{row['id']}")
    return json_response({"incident": incidents.incident_json(row), "assignments": assigned})


async def _timeline(pool: asyncpg.Pool, incident_id: str) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await pool.fetch(
        "SELECT id, at, type, payload FROM events WHERE payload ? 'incident_id' AND payload->>'incident_id' = $1 ORDER BY id",
        incident_id,
    )
    return rows


@routes.route("GET", "/api/incidents/{id}/timeline", roles=READERS, summary="Everything that happened to the incident, in order, with who", returns={200: obj(timeline=array())})
async def timeline(request: web.Request) -> web.Response:
    pool = request.app[POOL]
    row = await incidents.get(pool, request.match_info["id"])
    entries = await _timeline(pool, str(row["id"]))
    await audit.record(pool, actor_of(request), "incident.timeline", f"incident:{row['id']}")
    return json_response({"timeline": [
        {"event_id": e["id"], "at": e["at"], "type": e["type"], "by": e["payload"].get("by"),
         "unit_id": e["payload"].get("unit_id"), "status": e["payload"].get("status"), "data": _public(e["payload"])}
        for e in entries
    ]})


def _public(payload: dict[str, Any]) -> dict[str, Any]:
    # The unit snapshot and incident body repeat what the incident endpoint gives; keep the timeline lean.
    return {k: v for k, v in payload.items() if k not in ("unit", "incident")}


# A pseudonymised incident has no caller number (server/retention.py); the core's Call needs one, so this
# stand-in takes its place and the export then leaves the caller out.
NO_NUMBER = "000"


def core_incident(row: asyncpg.Record) -> Incident:
    call = Call(
        phone=row["caller_phone"] or NO_NUMBER, received_at=row["received_at"], caller_name=row["caller_name"],
        location=Point(row["lat"], row["lon"]) if row["lat"] is not None else None, address=row["address"],
        kelurahan=row["kelurahan"] or "", kecamatan=row["kecamatan"] or "", call_type=row["call_type"],
        priority=Priority(row["priority"]), notes=row["notes"],
    )
    return Incident(
        id=IncidentId(str(row["id"])), call=call, priority=Priority(row["priority"]), state=IncidentState(row["status"]),
        outcome=Outcome(row["outcome"]) if row["outcome"] else None,
        duplicate_of=IncidentId(str(row["duplicate_of"])) if row["duplicate_of"] else None, closed_at=row["closed_at"],
    )


@routes.route("GET", "/api/incidents/{id}/eido", roles=READERS, summary="The incident as JSON close to NENA EIDO (caller details included)", returns={200: OBJECT})
async def eido(request: web.Request) -> web.Response:
    pool = request.app[POOL]
    row = await incidents.get(pool, request.match_info["id"])
    units = await pool.fetch(
        f"SELECT {UNIT_COLUMNS} FROM units WHERE id IN (SELECT unit_id FROM assignments WHERE incident_id = $1) ORDER BY id", row["id"]
    )
    entries = [
        TimelineEntry(e["at"], e["type"].replace("-", "_"), UnitId(e["payload"]["unit_id"]) if e["payload"].get("unit_id") else None,
                      str(e["payload"].get("status") or e["payload"].get("reason") or e["payload"].get("alert") or ""))
        for e in await _timeline(pool, str(row["id"]))
    ]
    document = incident_to_eido(
        core_incident(row), agency_id=request.app[CONFIG].dispatch.agency_id, generated_at=dt.datetime.now(dt.UTC),
        units=[unit_from_row(u) for u in units], timeline=entries, table=await request.app[TRIAGE].get(), include_caller=bool(row["caller_phone"]),
    )
    await audit.record(pool, actor_of(request), "incident.export", f"incident:{row['id']}", {"format": "eido"})
    return json_response(document)


@routes.route("GET", "/api/metrics", roles=READERS, summary=(
    "Response-time percentiles (p50, p90) per priority and per kecamatan; ambulance offload time (at_hospital to handover) per hospital"
), query=MetricsQuery, returns={200: obj(all=OBJECT, by_priority=OBJECT, by_kecamatan=OBJECT, offload_by_hospital=OBJECT)})
async def metrics(request: web.Request) -> web.Response:
    q = read_query(request, MetricsQuery)
    rows = await request.app[POOL].fetch(
        """SELECT priority, kecamatan, received_at, first_dispatched_at, first_acknowledged_at, first_on_scene_at, closed_at
           FROM incidents WHERE ($1::timestamptz IS NULL OR received_at >= $1) AND ($2::timestamptz IS NULL OR received_at < $2)""",
        q.since, q.until,
    )
    groups: dict[str, dict[str, list[Any]]] = {"priority": defaultdict(list), "kecamatan": defaultdict(list)}
    everything = []
    for r in rows:
        interval = intervals(IncidentTimes(r["received_at"], r["first_dispatched_at"], r["first_acknowledged_at"],
                                           r["first_on_scene_at"], r["closed_at"]))
        everything.append(interval)
        groups["priority"][r["priority"]].append(interval)
        groups["kecamatan"][r["kecamatan"] or "unknown"].append(interval)

    def summary(items: list[Any]) -> dict[str, Any]:
        return {
            "incidents": len(items),
            "intervals": {name: dataclasses.asdict(s) for name, s in summarize_intervals(items).items()},
            "nfpa1225": dataclasses.asdict(nfpa1225_check(i.call_to_dispatch_s for i in items)),
        }

    handovers = await request.app[POOL].fetch(
        """SELECT n.facility_code, f.name, n.arrived_at, n.handed_over_at FROM prearrival_notices n JOIN facilities f ON f.code = n.facility_code
           WHERE n.handed_over_at IS NOT NULL
             AND ($1::timestamptz IS NULL OR n.handed_over_at >= $1) AND ($2::timestamptz IS NULL OR n.handed_over_at < $2)""",
        q.since, q.until,
    )
    names = {h["facility_code"]: h["name"] for h in handovers}
    offload = offload_by_hospital(Handover(h["facility_code"], h["arrived_at"], h["handed_over_at"]) for h in handovers)
    return json_response({
        "offload_by_hospital": {code: {"name": names[code], "offload_s": dataclasses.asdict(s)} for code, s in offload.items()},
        "since": q.since, "until": q.until, "all": summary(everything),
        "by_priority": {k: summary(v) for k, v in sorted(groups["priority"].items())},
        "by_kecamatan": {k: summary(v) for k, v in sorted(groups["kecamatan"].items())},
    })
