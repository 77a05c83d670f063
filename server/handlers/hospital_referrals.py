"""Referrals over HTTP: the specialist's choice of hospital, the hospital's requests and answers, a consult's timeline.

A hospital account reaches only the referrals addressed to its own hospital (another's is a 404).
Accepting one that needs transport makes its inter-facility transfer incident (`server.transfers`).
"""

from __future__ import annotations

import pydantic
from aiohttp import web

from dispatch.errors import InvalidInput
from dispatch.geo import Point
from dispatch.hospitals import SERVICES, parse_service
from server import audit, consult_access, consults, destinations, referrals, transfers
from server.api_schemas import OBJECT, STRING, array, obj
from server.decline_reasons import DeclineBody, reason_of
from server.errors import InvalidField
from server.handlers.auth import actor_of
from server.keys import POOL, USER
from server.roles import Role
from server.routing import Routes, json_response, read_body, read_query
from signaling.access import Action
from signaling.icd10 import COMMON
from signaling.referral import Answer

routes = Routes("referrals")
HOSPITAL = frozenset({Role.HOSPITAL})
SPECIALIST = frozenset({Role.SPECIALIST})
CONSULT_READERS = frozenset({Role.PUSKESMAS, Role.SPECIALIST, Role.ADMIN})
REFERRAL = obj(id=STRING, consult_id=STRING, state=STRING, icd10=STRING, urgency=STRING, patient=OBJECT, soap=OBJECT)


class OptionsQuery(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    service: str | None = pydantic.Field(default=None, max_length=40, description="the service the patient needs at the hospital")


@routes.route("GET", "/api/consults/{id}/referral-options", roles=SPECIALIST, summary="Hospitals ranked from the consult's puskesmas (for a service), and the diagnoses and services to choose from", query=OptionsQuery, returns={200: obj(hospitals=array(), diagnoses=array(), services=array(STRING))})
async def referral_options(request: web.Request) -> web.Response:
    query = read_query(request, OptionsQuery)
    try:
        service = parse_service(query.service or None)
    except InvalidInput as exc:
        raise InvalidField(exc.message, field="service") from None
    pool = request.app[POOL]
    stored = await consults.load(pool, request.match_info["id"])
    stored.require(request[USER], Action.COMPLETE)  # the consult's own specialist, while it is open
    place = await pool.fetchrow("SELECT lat, lon FROM facilities WHERE code = $1", stored.facility)
    ranking = await destinations.ranked(request.app, pool, Point(place["lat"], place["lon"]), None, service=service)
    return json_response({
        **ranking, "urgency": stored.consult.urgency.value, "services": sorted(SERVICES),
        "diagnoses": [{"code": code, "label_id": id_, "label_en": en} for code, (id_, en) in COMMON.items()],
    })


@routes.route("GET", "/api/referrals", roles=HOSPITAL, summary="Referral requests addressed to your hospital: waiting ones (most urgent first), then the latest answered", returns={200: obj(referrals=array(REFERRAL))})
async def list_referrals(request: web.Request) -> web.Response:
    pool = request.app[POOL]
    found = await referrals.for_hospital(pool, request[USER])
    await audit.record(pool, actor_of(request), "referral.list", None, {"referrals": [r["id"] for r in found]})
    return json_response({"referrals": found})


async def _answered(request: web.Request, given: Answer, reason: str | None = None) -> web.Response:
    pool, actor, user = request.app[POOL], actor_of(request), request[USER]
    async with pool.acquire() as con:
        row, stored = await referrals.reply(con, actor, user, request.match_info["id"], given, reason)
    referral = stored.consult.outcome.referral if stored.consult.outcome else None
    if row["state"] == "accepted" and referral is not None and referral.transport:
        await transfers.ensure(request.app, actor, row, stored)
        row = await referrals.addressed(pool, request.match_info["id"], user)
    return json_response({"referral": await referrals.request_view(pool, row, stored)})


@routes.route("POST", "/api/referrals/{id}/accept", roles=HOSPITAL, summary="Accept a referral (again: no change); one needing transport becomes a PSC 119 transfer incident", returns={200: obj(referral=REFERRAL)})
async def accept_referral(request: web.Request) -> web.Response:
    return await _answered(request, Answer.ACCEPT)


@routes.route("POST", "/api/referrals/{id}/decline", roles=HOSPITAL, summary="Decline a referral with a reason the consult's doctors read", body=DeclineBody, returns={200: obj(referral=REFERRAL)})
async def decline_referral(request: web.Request) -> web.Response:
    return await _answered(request, Answer.DECLINE, reason_of(await read_body(request, DeclineBody)))


@routes.route("GET", "/api/consults/{id}/timeline", roles=CONSULT_READERS, summary="Everything that happened to the consult and its referral, in order, with who", returns={200: obj(timeline=array())})
async def consult_timeline(request: web.Request) -> web.Response:
    pool = request.app[POOL]
    stored, reader = await consult_access.load_readable(pool, request.match_info["id"], request[USER])
    rows = await pool.fetch(
        """SELECT id, at, type, payload FROM events WHERE type LIKE 'consult.%' AND payload->>'id' = $1
           UNION ALL
           SELECT id, at, type, payload FROM events WHERE payload ? 'consult_id' AND payload->>'consult_id' = $1
           ORDER BY id""",
        stored.id,
    )
    await audit.record(pool, actor_of(request), "consult.timeline", f"consult:{stored.id}", {"as": reader.value})
    return json_response({"timeline": [
        {"event_id": e["id"], "at": e["at"], "type": e["type"], "by": e["payload"].get("by"),
         "state": e["payload"].get("state"), "incident_id": e["payload"].get("incident_id")}
        for e in rows
    ]})

