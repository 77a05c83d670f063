"""Pre-arrival notices, handover and the crew's vitals: the hospital's, the crew's and the operator's HTTP API.

A hospital account reaches only the notices addressed to its own hospital (another's is a 404, as if it did
not exist); a crew reaches the incidents its unit serves or served lately (a handover only while it serves); an
operator reaches every one.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pydantic
from aiohttp import web

from dispatch.errors import InvalidInput
from dispatch.vitals import parse_patient, parse_vitals
from server import audit, field_vitals, incidents, prearrival
from server.api_schemas import ANY, BOOLEAN, OBJECT, array, obj
from server.decline_reasons import DeclineBody, reason_of
from server.errors import InvalidField, NotFound
from server.handlers.auth import actor_of
from server.keys import CONFIG, FLEET, POOL, USER
from server.roles import Role
from server.routing import Routes, json_response, read_body, read_query

routes = Routes("hospitals")
HOSPITAL = frozenset({Role.HOSPITAL})
READERS = frozenset({Role.HOSPITAL, Role.OPERATOR, Role.FIELD_TEAM})
RECORDERS = frozenset({Role.OPERATOR, Role.FIELD_TEAM})
NOTICES = obj(notices=array(), refresh_s=ANY)


class NoticeQuery(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    incident: str | None = pydantic.Field(default=None, max_length=64, description="one incident's notices (required for a crew)")


class VitalsBody(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    idempotency_key: str = pydantic.Field(min_length=8, max_length=100, pattern=r"^[A-Za-z0-9_-]+$",
                                          description="client-chosen, the same on every retry: the set counts once")
    measured_at: str | None = pydantic.Field(default=None, max_length=40, description="ISO 8601 with a zone; default now")
    systolic: pydantic.StrictInt | None = None
    diastolic: pydantic.StrictInt | None = None
    pulse: pydantic.StrictInt | None = None
    spo2: pydantic.StrictInt | None = None
    gcs: pydantic.StrictInt | None = None
    resp_rate: pydantic.StrictInt | None = None


class PatientBody(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    age: pydantic.StrictInt | None = pydantic.Field(default=None, description="whole years")
    sex: str | None = pydantic.Field(default=None, description="male or female")


def _notice_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 15:
        raise NotFound(f"no notice {raw}", field="id")
    return int(raw)


def _domain(exc: InvalidInput) -> InvalidField:
    return InvalidField(exc.message, field=exc.field)


async def _respond(request: web.Request, notice_id: int) -> web.Response:
    found = await prearrival.views(request.app[POOL], request.app[FLEET], notice_id=notice_id)
    return json_response({"notice": found[0] if found else await _bare(request, notice_id)})


async def _bare(request: web.Request, notice_id: int) -> dict[str, Any]:
    row = await prearrival.notice_of(request.app[POOL], notice_id)
    return {"id": row["id"], "incident_id": str(row["incident_id"]), "facility": row["facility_code"], "status": row["status"]}


@routes.route("GET", "/api/notices", roles=READERS, summary=(
    "Pre-arrival notices, open ones and those closed in the last hours, newest first, each with the patient, the latest vitals and "
    "the carrying units' ETA now: a hospital's own only; a crew's for an incident its unit serves (?incident= required)"
), query=NoticeQuery, returns={200: NOTICES})
async def list_notices(request: web.Request) -> web.Response:
    q = read_query(request, NoticeQuery)
    user, pool = request[USER], request.app[POOL]
    incident_key = (await incidents.get(pool, q.incident))["id"] if q.incident is not None else None
    if user.role is Role.FIELD_TEAM and (incident_key is None or not await field_vitals.crew_serves(pool, user.unit_id, incident_key)):
        raise NotFound(f"no incident {q.incident}", field="incident")
    facility = user.facility_code if user.role is Role.HOSPITAL else None
    found = await prearrival.views(pool, request.app[FLEET], facility=facility, incident=incident_key)
    if found:  # one entry a read, naming what it showed: the page reads again on every change
        await audit.record(pool, actor_of(request), "notice.read", None,
                           {"notices": [n["id"] for n in found], "incidents": sorted({n["incident_id"] for n in found})})
    return json_response({"notices": found, "refresh_s": request.app[CONFIG].dispatch.notice_eta_refresh_s})


@routes.route("POST", "/api/notices/{id}/acknowledge", roles=HOSPITAL, summary="The hospital expects the patient", returns={200: obj(notice=OBJECT)})
async def acknowledge(request: web.Request) -> web.Response:
    notice_id = _notice_id(request)
    async with request.app[POOL].acquire() as con, con.transaction():
        await prearrival.acknowledge(con, actor_of(request), notice_id, _facility(request))
    return await _respond(request, notice_id)


@routes.route("POST", "/api/notices/{id}/decline", roles=HOSPITAL, summary="The hospital cannot take the patient (with a reason): the operators are alerted to choose another", body=DeclineBody, returns={200: obj(notice=OBJECT)})
async def decline(request: web.Request) -> web.Response:
    reason = reason_of(await read_body(request, DeclineBody))
    notice_id = _notice_id(request)
    async with request.app[POOL].acquire() as con, con.transaction():
        await prearrival.decline(con, actor_of(request), notice_id, _facility(request), reason)
    return await _respond(request, notice_id)


@routes.route("POST", "/api/notices/{id}/handover", roles=frozenset({Role.HOSPITAL, Role.FIELD_TEAM}), summary=(
    "The patient is handed over (after a unit reported at_hospital): the offload time runs from that arrival to now"
), returns={200: obj(notice=OBJECT)})
async def handover(request: web.Request) -> web.Response:
    notice_id = _notice_id(request)
    user = request[USER]
    async with request.app[POOL].acquire() as con, con.transaction():
        facility = None
        if user.role is Role.FIELD_TEAM:
            row = await prearrival.notice_of(con, notice_id)
            # Locked first (the order every change takes): the unit cannot leave the incident between the check and the handover.
            await con.execute("SELECT 1 FROM incidents WHERE id = $1 FOR UPDATE", row["incident_id"])
            await field_vitals.require_serving(con, user.unit_id, row["incident_id"], NotFound(f"no notice {notice_id}", field="id"), "id")
        else:
            facility = _facility(request)
        await prearrival.handover(con, actor_of(request), notice_id, facility)
    return await _respond(request, notice_id)


def _facility(request: web.Request) -> str:
    code = request[USER].facility_code
    assert code is not None  # a hospital account is bound to its hospital (a database constraint)
    return code


def _unit_of(request: web.Request) -> tuple[str | None, bool]:
    user = request[USER]
    return (user.unit_id, True) if user.role is Role.FIELD_TEAM else (None, False)


@routes.route("POST", "/api/incidents/{id}/vitals", roles=RECORDERS, summary=(
    "Record a set of the patient's vital signs (each optional, range-checked) measured at measured_at; idempotent by its key"
), body=VitalsBody, returns={200: obj(vitals=OBJECT, duplicate=BOOLEAN), 201: obj(vitals=OBJECT, duplicate=BOOLEAN)})
async def record_vitals(request: web.Request) -> web.Response:
    body = (await read_body(request, VitalsBody)).model_dump(exclude_none=True)
    key = body.pop("idempotency_key")
    try:
        vitals = parse_vitals(body, dt.datetime.now(dt.UTC))
    except InvalidInput as exc:
        raise _domain(exc) from None
    unit_id, crew = _unit_of(request)
    async with request.app[POOL].acquire() as con, con.transaction():
        saved, duplicate = await field_vitals.record_vitals(con, actor_of(request), request.match_info["id"], vitals, key, unit_id, crew=crew)
    return json_response({"vitals": saved, "duplicate": duplicate}, status=200 if duplicate else 201)


@routes.route("PUT", "/api/incidents/{id}/patient", roles=RECORDERS, summary="Set the patient's age and sex (a field left out keeps its value)", body=PatientBody, returns={200: obj(patient=obj(age=ANY, sex=ANY))})
async def set_patient(request: web.Request) -> web.Response:
    body = (await read_body(request, PatientBody)).model_dump(exclude_none=True)
    try:
        patient = parse_patient(body)
    except InvalidInput as exc:
        raise _domain(exc) from None
    if patient.age is None and patient.sex is None:
        raise InvalidField("give the age, the sex or both", field="age")
    unit_id, crew = _unit_of(request)
    async with request.app[POOL].acquire() as con, con.transaction():
        saved = await field_vitals.set_patient(con, actor_of(request), request.match_info["id"], patient, unit_id, crew=crew)
    return json_response({"patient": saved})

