"""Telemedicine consults over HTTP, and the signaling websocket of their video rooms.

Puskesmas doctors request, follow, cancel and attach files; specialists go on call,
see the queue of their specialties, accept (one wins), decline, and complete with
SOAP notes and a decision, after a video session or as store-and-forward. Every
read of patient data is written to the audit log.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote

import pydantic
from aiohttp import web

from server import audit, consult_access, consult_files, consults, oncall, referrals, room_socket, rooms
from server.api_schemas import ANY, BOOLEAN, CONSULT, FILE, INTEGER, NUMBER, OBJECT, ON_CALL, STRING, TIME, array, obj
from server.consults import member_id
from server.handlers.auth import actor_of
from server.keys import CONFIG, POOL, SESSION, USER
from server.roles import PUBLIC, Role
from server.routing import Routes, json_response, read_body, read_query
from signaling.access import Action
from signaling.consult import ConsultState

routes = Routes("consults")

PUSKESMAS = frozenset({Role.PUSKESMAS})
SPECIALIST = frozenset({Role.SPECIALIST})
DOCTORS = frozenset({Role.PUSKESMAS, Role.SPECIALIST})
READERS = frozenset({Role.PUSKESMAS, Role.SPECIALIST, Role.ADMIN})


class _Body(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", strict=True)


class RequestBody(_Body):
    idempotency_key: str = pydantic.Field(min_length=8, max_length=100)
    service: str = pydantic.Field(max_length=40)
    specialty: str = pydantic.Field(max_length=40)
    urgency: str = pydantic.Field(max_length=20)
    patient: dict[str, Any]


class ListQuery(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    state: ConsultState | None = None


class CancelBody(_Body):
    reason: str | None = pydantic.Field(default=None, max_length=500)


class OnCallBody(_Body):
    specialty: str = pydantic.Field(max_length=40)
    on_call: bool


class CompleteBody(_Body):
    outcome: dict[str, Any]


def _id(request: web.Request) -> str:
    return request.match_info["id"]


@routes.route("POST", "/api/consults", roles=PUSKESMAS, summary="Request a consult (idempotent by idempotency_key)", body=RequestBody, returns={200: obj(consult=CONSULT), 201: obj(consult=CONSULT)})
async def request_consult(request: web.Request) -> web.Response:
    body = await read_body(request, RequestBody)
    async with request.app[POOL].acquire() as con:
        stored, created = await consults.create(
            con, actor_of(request), request[USER], body.model_dump(), request.app[CONFIG].consult, consults.now()
        )
    return json_response({"consult": stored.wire(consults.now())}, status=201 if created else 200)


@routes.route("GET", "/api/consults", roles=READERS, summary="Consults: a facility's, a specialist's queue and own, or all (admin)", query=ListQuery, returns={200: obj(consults=array(CONSULT))})
async def list_consults(request: web.Request) -> web.Response:
    query = read_query(request, ListQuery)
    user = request[USER]
    pool = request.app[POOL]
    found = await consult_access.readable_list(pool, user, None if query.state is None else query.state.value)
    declined = await consults.declined_by(pool, user) if user.role is Role.SPECIALIST else set()
    at = consults.now()
    items = [{**consult_access.list_entry(s, at), "declined_by_me": s.id in declined} for s in found]
    await audit.record(pool, actor_of(request), "consult.list", None, {"consults": [s.id for s in found]})
    return json_response({"consults": items})


@routes.route("GET", "/api/consults/{id}", roles=READERS, summary="One consult with its patient summary (its doctors, its puskesmas, its specialty's queue, admins)", returns={200: obj(consult=CONSULT)})
async def get_consult(request: web.Request) -> web.Response:
    pool = request.app[POOL]
    stored, reader = await consult_access.load_readable(pool, _id(request), request[USER])
    attachments = await consult_files.listing(pool, stored.id)
    referral = await referrals.of_consult(pool, stored.id)
    await audit.record(pool, actor_of(request), "consult.read", f"consult:{stored.id}", {"as": reader.value})
    return json_response({"consult": {**stored.wire(consults.now()), "attachments": attachments, "referral": referral}})


@routes.route("POST", "/api/consults/{id}/cancel", roles=PUSKESMAS, summary="Withdraw a request (the requesting doctor)", body=CancelBody, returns={200: obj(consult=CONSULT)})
async def cancel_consult(request: web.Request) -> web.Response:
    body = await read_body(request, CancelBody) if request.body_exists else CancelBody()
    async with request.app[POOL].acquire() as con:
        stored = await consults.cancel(con, actor_of(request), request[USER], _id(request), body.reason, consults.now())
    return json_response({"consult": stored.wire(consults.now())})


@routes.route("PUT", "/api/oncall", roles=SPECIALIST, summary="Go on or off call for one of your specialties", body=OnCallBody, returns={200: ON_CALL})
async def set_on_call(request: web.Request) -> web.Response:
    body = await read_body(request, OnCallBody)
    user = request[USER]
    async with request.app[POOL].acquire() as con:
        await oncall.set_on_call(con, actor_of(request), user, body.specialty, body.on_call)
        return json_response({"on_call": await oncall.on_call(con, user)})


@routes.route("GET", "/api/oncall", roles=frozenset({Role.SPECIALIST, Role.ADMIN}), summary="On-call roster: your own, or everyone's (admin)", returns={200: ON_CALL})
async def get_on_call(request: web.Request) -> web.Response:
    user = request[USER]
    mine = None if user.role is Role.ADMIN else user
    return json_response({"on_call": await oncall.on_call(request.app[POOL], mine)})


@routes.route("POST", "/api/consults/{id}/accept", roles=SPECIALIST, summary="Accept a waiting request (atomic: one specialist wins, the others get 409)", returns={200: obj(consult=CONSULT)})
async def accept_consult(request: web.Request) -> web.Response:
    async with request.app[POOL].acquire() as con:
        stored = await consults.accept(con, actor_of(request), request[USER], _id(request), consults.now())
    return json_response({"consult": stored.wire(consults.now())})


@routes.route("POST", "/api/consults/{id}/decline", roles=SPECIALIST, summary="Decline a request; it stays in the queue for the others", returns={200: obj(consult=obj(id=STRING, state=STRING), declined=BOOLEAN)})
async def decline_consult(request: web.Request) -> web.Response:
    async with request.app[POOL].acquire() as con:
        stored = await consults.decline(con, actor_of(request), request[USER], _id(request))
    return json_response({"consult": {"id": stored.id, "state": stored.consult.state.value}, "declined": True})


@routes.route("POST", "/api/consults/{id}/complete", roles=SPECIALIST, summary="Complete with SOAP notes and a decision (after a session or store-and-forward); a referral is sent to its hospital", body=CompleteBody, returns={200: obj(consult=CONSULT)})
async def complete_consult(request: web.Request) -> web.Response:
    body = await read_body(request, CompleteBody)
    async with request.app[POOL].acquire() as con:
        stored = await referrals.complete(con, actor_of(request), request[USER], _id(request), body.outcome, consults.now())
    return json_response({"consult": stored.wire(consults.now())})


@routes.route("POST", "/api/consults/{id}/attachments", roles=PUSKESMAS, summary="Upload an attachment: raw body, its Content-Type, ?filename=", returns={201: obj(attachment=OBJECT)})
async def upload_attachment(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    pool = request.app[POOL]
    stored = await consults.load(pool, _id(request))
    stored.require(request[USER], Action.ADD_FILES)
    upload = await consult_files.read_upload(request, config)
    async with pool.acquire() as con:
        entry = await consult_files.store(con, config, actor_of(request), stored, upload)
    return json_response({"attachment": entry}, status=201)


@routes.route("GET", "/api/consults/{id}/attachments/{attachment_id}", roles=READERS | {Role.HOSPITAL}, summary="Download an attachment (whoever may read the consult; the hospital it is referred to)", returns={200: FILE})
async def download_attachment(request: web.Request) -> web.StreamResponse:
    pool = request.app[POOL]
    stored, reader = await consult_access.attachment_reader(pool, _id(request), request[USER])
    entry, path = await consult_files.find(pool, request.app[CONFIG], stored, request.match_info["attachment_id"])
    await audit.record(
        pool, actor_of(request), "consult.attachment.read", f"consult:{stored.id}", {"attachment": entry["id"], "as": reader}
    )
    response = web.FileResponse(path)
    response.content_type = entry["content_type"]
    response.headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(entry['filename'], safe='')}"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    return response


@routes.route("POST", "/api/consults/{id}/join", roles=DOCTORS, summary="A join token for the consult's video room (its two doctors)", returns={200: obj(token=STRING, expires_at=TIME, consult=STRING, member=STRING, room_url=STRING, ice_servers=array(), heartbeat_s=NUMBER)})
async def join_room(request: web.Request) -> web.Response:
    user = request[USER]
    stored = await consults.load(request.app[POOL], _id(request))
    stored.require(user, Action.JOIN)
    token, expires = await rooms.issue_token(request.app, stored.id, member_id(user), actor_of(request), request[SESSION].id)
    ice = rooms.ice_for(request.app, str(user.id), consults.now())
    return json_response({
        "token": token, "expires_at": expires, "consult": stored.id, "member": str(user.id),
        "room_url": f"/ws/consults/{stored.id}", "ice_servers": [s.to_dict() for s in ice],
        "heartbeat_s": request.app[CONFIG].consult.heartbeat_s,
    })


@routes.route("GET", "/api/ice-servers", roles=DOCTORS, summary="STUN/TURN servers with time-limited TURN credentials", returns={200: obj(ice_servers=array(), ttl_s=INTEGER)})
async def get_ice_servers(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    ice = rooms.ice_for(request.app, str(request[USER].id), consults.now())
    return json_response({"ice_servers": [s.to_dict() for s in ice], "ttl_s": config.ice.turn_ttl_s})


@routes.route("GET", "/api/consults/{id}/chat", roles=READERS, summary="The consult's stored chat (whoever may read the consult); client_id: the sender's id of each message (null before 0022)", returns={200: obj(messages=array())})
async def get_chat(request: web.Request) -> web.Response:
    pool = request.app[POOL]
    stored, reader = await consult_access.load_readable(pool, _id(request), request[USER])
    rows = await pool.fetch(
        "SELECT id, client_id, from_user, text, at FROM consult_chat WHERE consult_id = $1 ORDER BY id", uuid.UUID(stored.id)
    )
    await audit.record(pool, actor_of(request), "consult.chat.read", f"consult:{stored.id}", {"as": reader.value})
    return json_response({"messages": [dict(r) for r in rows]})


@routes.route("GET", "/ws/consults/{id}", roles=PUBLIC, summary="Websocket: a consult's signaling room; authenticates with a join token (first message)", returns={101: ANY})
async def consult_room(request: web.Request) -> web.StreamResponse:
    return await room_socket.serve(request)
