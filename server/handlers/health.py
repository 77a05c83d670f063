"""Liveness and readiness probes."""

from __future__ import annotations

import asyncio

from aiohttp import web

from server import migrate
from server.keys import POOL
from server.roles import PUBLIC
from server.api_schemas import STRING, obj
from server.routing import Routes, json_response

routes = Routes("health")


@routes.route("GET", "/healthz", roles=PUBLIC, summary="The process is alive", returns={200: obj(status=STRING)})
async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


@routes.route("GET", "/readyz", roles=PUBLIC, summary="The database is reachable and its migrations are current", returns={200: obj(status=STRING)})
async def readyz(request: web.Request) -> web.Response:
    try:
        async with asyncio.timeout(2):
            async with request.app[POOL].acquire() as con:
                missing = [m.name for m in await migrate.pending(con)]
    except Exception as exc:  # any failure to reach the database means "not ready", never a 500
        return json_response({"status": "unavailable", "database": type(exc).__name__}, status=503)
    if missing:
        return json_response({"status": "unavailable", "pending_migrations": missing}, status=503)
    return json_response({"status": "ready"})
