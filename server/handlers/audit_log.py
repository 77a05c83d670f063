"""Reading the audit log (admin only)."""

from __future__ import annotations

import pydantic
from aiohttp import web

from server.api_schemas import array, obj
from server.keys import POOL
from server.roles import Role
from server.routing import Routes, json_response, read_query
from server.strict_input import MAX_INTEGER, Instant

routes = Routes("audit")


class AuditQuery(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    action: str | None = pydantic.Field(default=None, max_length=64)
    object: str | None = pydantic.Field(default=None, max_length=128)
    username: str | None = pydantic.Field(default=None, max_length=63)
    since: Instant | None = None
    before_id: int | None = pydantic.Field(default=None, ge=1, le=MAX_INTEGER)
    limit: int = pydantic.Field(default=100, ge=1, le=1000)


@routes.route("GET", "/api/audit", roles=frozenset({Role.ADMIN}), summary="Audit log entries, newest first", query=AuditQuery, returns={200: obj(entries=array())})
async def audit_entries(request: web.Request) -> web.Response:
    q = read_query(request, AuditQuery)
    rows = await request.app[POOL].fetch(
        """SELECT id, at, user_id, username, action, object, detail, address, request_id FROM audit_log
           WHERE ($1::text IS NULL OR action = $1) AND ($2::text IS NULL OR object = $2)
             AND ($3::text IS NULL OR username = $3) AND ($4::timestamptz IS NULL OR at >= $4)
             AND ($5::bigint IS NULL OR id < $5)
           ORDER BY id DESC LIMIT $6""",
        q.action, q.object, q.username, q.since, q.before_id, q.limit,
    )
    return json_response({"entries": [dict(r) for r in rows]})
