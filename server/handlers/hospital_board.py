"""The hospitals' availability board: every hospital's free beds and services now, and a hospital's own update."""

from __future__ import annotations

import datetime as dt

import pydantic
from aiohttp import web

from server import hospital_availability
from server.api_schemas import NUMBER, OBJECT, STRING, array, obj
from server.handlers.auth import actor_of
from server.keys import CONFIG, POOL, USER
from server.roles import Role
from server.routing import Routes, json_response, read_body

routes = Routes("hospitals")
# Everyone who chooses among hospitals (operators, specialists for a referral, the hospitals themselves) and the Dinkes.
READERS = frozenset({Role.OPERATOR, Role.ADMIN, Role.HOSPITAL, Role.SPECIALIST})
# A hospital sets its own figures; the Dinkes admin may correct any (a desk that phoned its figures in, or a wrong one left overnight).
WRITERS = frozenset({Role.HOSPITAL, Role.ADMIN})
FIGURES = obj(code=STRING, name=STRING, services=array(STRING), beds=OBJECT, services_now=OBJECT)


class AvailabilityBody(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    beds: dict[str, int] = pydantic.Field(default_factory=dict, description="free beds by class (igd, icu, nicu, picu, isolation, ward), 0..9999")
    services: dict[str, bool] = pydantic.Field(default_factory=dict, description="each of the hospital's services: true if available now")


def stale_after(request: web.Request) -> dt.timedelta:
    return dt.timedelta(seconds=request.app[CONFIG].hospitals.availability_stale_s)


@routes.route("GET", "/api/hospitals/availability", roles=READERS, summary=(
    "Every hospital's free beds by class and services available now; each figure with its time, who set it, its age and "
    "whether it is stale (hospitals.availability_stale_s); null for a figure never reported"
), returns={200: obj(now=STRING, stale_after_s=NUMBER, bed_classes=array(STRING), hospitals=array(FIGURES))})
async def availability_board(request: web.Request) -> web.Response:
    return json_response(await hospital_availability.board(request.app[POOL], stale_after(request)))


@routes.route("PATCH", "/api/hospitals/{code}/availability", roles=WRITERS, summary=(
    "Set some of a hospital's figures (absolute values: a retry sets the same); a hospital account its own hospital only"
), body=AvailabilityBody, returns={200: obj(hospital=FIGURES)})
async def update_availability(request: web.Request) -> web.Response:
    body = await read_body(request, AvailabilityBody)
    async with request.app[POOL].acquire() as con, con.transaction():
        hospital = await hospital_availability.hospital_for(con, request[USER], request.match_info["code"])
        entry = await hospital_availability.update(con, actor_of(request), hospital, body.beds, body.services, stale_after(request))
    return json_response({"hospital": entry})
