"""The open triage table: call types, their default priority, the capabilities and the hospital service they need."""

from __future__ import annotations

import pydantic
from aiohttp import web

from dispatch.capabilities import parse_capabilities
from dispatch.hospitals import parse_service
from dispatch.priority import parse_priority
from server import audit, events
from server.api_schemas import OBJECT, array, obj
from server.errors import InvalidField
from server.handlers.auth import actor_of
from server.keys import POOL, TRIAGE
from server.roles import ALL_ROLES, Role
from server.routing import Routes, json_response, read_body

routes = Routes("triage")


class CallTypeBody(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    label_id: str = pydantic.Field(min_length=1, max_length=100)
    label_en: str = pydantic.Field(min_length=1, max_length=100)
    priority: str
    capabilities: list[str] = pydantic.Field(default_factory=list)
    service: str | None = pydantic.Field(default=None, description="what the destination hospital must have (cath_lab, ct...); null: nothing in particular")
    active: bool = True


@routes.route("GET", "/api/triage", roles=ALL_ROLES, summary="Call types with their default priority, needed capabilities and needed hospital service", returns={200: obj(call_types=array())})
async def list_call_types(request: web.Request) -> web.Response:
    rows = await request.app[POOL].fetch(
        "SELECT code, label_id, label_en, priority, capabilities, service, active FROM triage_types ORDER BY array_position(ARRAY['merah','kuning','hijau'], priority), code"
    )
    return json_response({"call_types": [dict(r) for r in rows]})


@routes.route("PUT", "/api/triage/{code}", roles=frozenset({Role.ADMIN}), summary="Add or change a call type", body=CallTypeBody, returns={200: obj(call_type=OBJECT)})
async def put_call_type(request: web.Request) -> web.Response:
    body = await read_body(request, CallTypeBody)
    code = request.match_info["code"]
    if not (code.isascii() and code[:1].isalpha() and code.replace("_", "").isalnum() and code.islower() and len(code) <= 40):
        raise InvalidField("lowercase letters, digits and '_', starting with a letter", field="code")
    priority = parse_priority(body.priority).value
    capabilities = sorted(parse_capabilities(body.capabilities, "capabilities"))
    service = parse_service(body.service)
    actor = actor_of(request)
    async with request.app[POOL].acquire() as con, con.transaction():
        row = await con.fetchrow(
            """INSERT INTO triage_types (code, label_id, label_en, priority, capabilities, active, service)
               VALUES ($1, $2, $3, $4, $5, $6, $7)
               ON CONFLICT (code) DO UPDATE SET label_id = $2, label_en = $3, priority = $4, capabilities = $5, active = $6,
                   service = $7, updated_at = now()
               RETURNING code, label_id, label_en, priority, capabilities, service, active""",
            code, body.label_id, body.label_en, priority, capabilities, body.active, service,
        )
        await events.append(con, "triage.updated", {"call_type": dict(row), "by": actor.username}, ["role:operator", "role:admin"])
        await audit.record(con, actor, "triage.put", f"call_type:{code}", dict(row))
    request.app[TRIAGE].changed()  # this process reads its own change at once; the others on the event
    return json_response({"call_type": dict(row)})
