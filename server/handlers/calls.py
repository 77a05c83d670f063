"""Taking a call and acting on the incident: the operator's HTTP API."""

from __future__ import annotations

from typing import Any

import pydantic
from aiohttp import web

from dispatch.geo import Point
from server import assignments, auto_dispatch, call_intake, closing, destinations, dispatch_guard, incidents, phone_presence
from server.api_schemas import ANY, ASSIGNMENT, CALL_TAKEN, DISPATCH_REFUSED, DISPATCH_STATE, INCIDENT, INTEGER, STRING, TIERS, array, obj
from server.errors import InvalidField, NotFound
from server.handlers.auth import actor_of
from server.keys import CONFIG, FLEET, METRICS, POOL, TRIAGE
from server.roles import Role
from server.routing import Routes, json_response, read_body

routes = Routes("incidents")
OPERATOR = frozenset({Role.OPERATOR})


class Location(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    lat: float = pydantic.Field(ge=-90, le=90)
    lon: float = pydantic.Field(ge=-180, le=180)


class CallBody(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    idempotency_key: str = pydantic.Field(min_length=8, max_length=100, description="client-chosen, the same on every retry")
    phone: str = pydantic.Field(min_length=1, max_length=40, description="the caller's number")
    caller_name: str | None = pydantic.Field(default=None, max_length=200)
    location: Location | None = None
    address: str = pydantic.Field(default="", max_length=500)
    kelurahan: str = pydantic.Field(default="", max_length=100, description="kelurahan code or name")
    call_type: str | None = pydantic.Field(default=None, max_length=40, description="a triage table code")
    complaint: str = pydantic.Field(default="", max_length=500)
    priority: str | None = pydantic.Field(default=None, description="merah, kuning or hijau; default from the call type")
    notes: str = pydantic.Field(default="", max_length=4000)


class UpdateBody(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    caller_name: str | None = pydantic.Field(default=None, max_length=200)
    location: Location | None = None
    address: str | None = pydantic.Field(default=None, max_length=500)
    kelurahan: str | None = pydantic.Field(default=None, max_length=100)
    call_type: str | None = pydantic.Field(default=None, max_length=40)
    complaint: str | None = pydantic.Field(default=None, max_length=500)
    priority: str | None = None
    notes: str | None = pydantic.Field(default=None, max_length=4000)


class DispatchBody(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    unit_id: str = pydantic.Field(min_length=1, max_length=64)
    expected_version: int | None = pydantic.Field(
        default=None, ge=0, le=2**31 - 1,
        description="the incident's assignment_version the operator saw; another is refused (409 stale). The console always sends it",
    )
    additional: bool = pydantic.Field(default=False, description="send this unit although a unit already serves the incident in its role")
    override_reason: str | None = pydantic.Field(
        default=None, min_length=1, max_length=500, description="why a unit lacking the incident's needed capabilities is sent anyway")


class CloseBody(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    outcome: str = pydantic.Field(description="emergency, information, silent, prank, duplicate or transfer")
    duplicate_of: str | None = pydantic.Field(default=None, description="required for the outcome duplicate")


class LinkBody(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    duplicate_of: str


class DestinationBody(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    facility: str = pydantic.Field(min_length=1, max_length=64)


def _settings(request: web.Request) -> Any:
    return request.app[CONFIG].dispatch


@routes.route("POST", "/api/calls", roles=OPERATOR, summary="Record a 119 call (idempotent); answers with warnings and the recommended units", body=CallBody, returns={200: CALL_TAKEN, 201: CALL_TAKEN})
async def create_call(request: web.Request) -> web.Response:
    body = (await read_body(request, CallBody)).model_dump(exclude_none=True)
    if "location" in body:
        body["location"] = dict(body["location"])
    pool, fleet, settings = request.app[POOL], request.app[FLEET], _settings(request)
    triage = await request.app[TRIAGE].get()
    taken = await call_intake.take(pool, fleet, settings, actor_of(request), incidents.CallIntake.parse(body), triage)
    row, created = taken.row, taken.created
    fresh = None  # the incident as stored now, when already known
    if taken.warnings is not None and taken.tiers is not None:
        request.app[METRICS].call_received(row["priority"])
        warnings, recommendations, fresh = taken.warnings, taken.tiers, row
    elif row["assessed_at"] is None:  # a retry after a failed assessment assesses it now
        warnings, recommendations, fresh = await incidents.assess(pool, fleet, settings, row, row["events_seen"])
    else:
        warnings, recommendations = row["warnings"], await incidents.recommend_for(fleet, settings, row, events_seen=row["events_seen"])
    auto = await auto_dispatch.merah(request.app, row, recommendations, triage) if created else None
    if fresh is None or auto is not None:  # an automatic dispatch changed it since
        fresh = await incidents.get(pool, str(row["id"]))
    result = {"incident": incidents.incident_json(fresh), "warnings": warnings, **recommendations,
              "created": created, "auto_dispatched": auto[0] if auto else None, "auto_dispatched_transport": auto[1] if auto else None}
    return json_response(result, status=201 if created else 200)


@routes.route("PATCH", "/api/incidents/{id}", roles=OPERATOR, summary="Correct or complete an open incident; answers with a fresh recommendation", body=UpdateBody, returns={200: obj(incident=INCIDENT, **TIERS)})
async def update_incident(request: web.Request) -> web.Response:
    changes = (await read_body(request, UpdateBody)).model_dump(exclude_unset=True)
    if isinstance(changes.get("location"), dict):
        changes["location"] = dict(changes["location"])
    pool = request.app[POOL]
    triage = await request.app[TRIAGE].get()
    row = await incidents.update(pool, actor_of(request), request.match_info["id"], changes, triage)
    tiers = await incidents.recommend_for(request.app[FLEET], _settings(request), row)
    return json_response({"incident": incidents.incident_json(row), **tiers})


@routes.route("GET", "/api/incidents/{id}/recommendations", roles=OPERATOR, summary="The units to send now, best first (first responders and carriers), with the incident's assignment version to dispatch against", returns={200: DISPATCH_STATE})
async def recommendations(request: web.Request) -> web.Response:
    pool = request.app[POOL]
    row = await incidents.get(pool, request.match_info["id"])
    return json_response(await dispatch_guard.state(pool, request.app[FLEET], _settings(request), row))


@routes.route("POST", "/api/incidents/{id}/dispatch", roles=OPERATOR, summary="Send a unit (atomic; 409 with a fresh recommendation if it was taken, 409 stale for another expected_version, 409 already_assigned for a further unit not sent as additional)", body=DispatchBody, returns={201: obj(assignment=ASSIGNMENT, assignment_version=INTEGER, warnings=array(ANY)), 409: DISPATCH_REFUSED})
async def dispatch_unit(request: web.Request) -> web.Response:
    body = await read_body(request, DispatchBody)
    pool = request.app[POOL]
    triage = await request.app[TRIAGE].get()
    assignment, phone = await assignments.dispatch(
        pool, request.app[FLEET], _settings(request), triage, actor_of(request), request.match_info["id"], body.unit_id, request.app[METRICS],
        expected_version=body.expected_version, additional=body.additional, override_reason=body.override_reason,
    )
    warnings = [] if phone["connected"] else [phone_presence.offline_warning(body.unit_id, phone)]
    return json_response({"assignment": assignment, "assignment_version": assignment["assignment_version"], "warnings": warnings}, status=201)


@routes.route("POST", "/api/incidents/{id}/assignments/{assignment_id}/cancel", roles=OPERATOR, summary="Withdraw a unit from the incident", returns={200: obj(assignment_id=INTEGER, unit_id=STRING, status=STRING)})
async def cancel_assignment(request: web.Request) -> web.Response:
    raw = request.match_info["assignment_id"]
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 15:
        raise NotFound(f"no assignment {raw}", field="assignment_id")
    result = await assignments.cancel(request.app[POOL], actor_of(request), request.match_info["id"], int(raw))
    return json_response(result)


@routes.route("POST", "/api/incidents/{id}/close", roles=OPERATOR, summary="Close with an outcome (prank, silent, information, transfer, emergency, duplicate)", body=CloseBody, returns={200: obj(incident=INCIDENT)})
async def close_incident(request: web.Request) -> web.Response:
    body = await read_body(request, CloseBody)
    row = await closing.close(request.app[POOL], actor_of(request), request.match_info["id"], body.outcome, body.duplicate_of)
    return json_response({"incident": incidents.incident_json(row)})


@routes.route("POST", "/api/incidents/{id}/link", roles=OPERATOR, summary="Close as a duplicate of another incident", body=LinkBody, returns={200: obj(incident=INCIDENT)})
async def link_duplicate(request: web.Request) -> web.Response:
    body = await read_body(request, LinkBody)
    row = await closing.close(request.app[POOL], actor_of(request), request.match_info["id"], "duplicate", body.duplicate_of)
    return json_response({"incident": incidents.incident_json(row)})


@routes.route("GET", "/api/incidents/{id}/hospitals", roles=OPERATOR, summary=(
    "Hospitals for the incident: those that have the service its call type needs (needed_service, from the triage table) first, "
    "then the others (capable false), each by ambulance ETA; warnings say when the nearest cannot treat the call"
), returns={200: obj(hospitals=array(), needed_service=ANY, warnings=array(ANY))})
async def nearest_hospitals(request: web.Request) -> web.Response:
    pool = request.app[POOL]
    row = await incidents.get(pool, request.match_info["id"])
    if row["lat"] is None:
        raise InvalidField("the incident has no location yet", field="location")
    return json_response(await destinations.ranked(request.app, pool, Point(row["lat"], row["lon"]), row["call_type"]))


@routes.route("POST", "/api/incidents/{id}/destination", roles=OPERATOR, summary="Choose the destination hospital", body=DestinationBody, returns={200: obj(incident=INCIDENT)})
async def set_destination(request: web.Request) -> web.Response:
    body = await read_body(request, DestinationBody)
    async with request.app[POOL].acquire() as con, con.transaction():
        updated = await destinations.choose(con, actor_of(request), request.match_info["id"], body.facility)
    return json_response({"incident": incidents.incident_json(updated)})
