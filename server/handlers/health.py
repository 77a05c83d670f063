"""Liveness and readiness probes."""

from __future__ import annotations

import asyncio

from aiohttp import web

from server import backup_runs, migrate
from server.api_schemas import NUMBER, STRING, TIME, nullable, obj
from server.keys import POOL
from server.roles import PUBLIC
from server.routing import Routes, json_response

routes = Routes("health")


@routes.route("GET", "/healthz", roles=PUBLIC, summary="The process is alive", returns={200: obj(status=STRING)})
async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


@routes.route("GET", "/readyz", roles=PUBLIC, summary="The database is reachable and its migrations are current; `backup` tells when the last good backup finished (informational)", returns={200: obj(status=STRING, backup=nullable(obj(finished_at=TIME, age_s=NUMBER)))})
async def readyz(request: web.Request) -> web.Response:
    try:
        async with asyncio.timeout(2):
            async with request.app[POOL].acquire() as con:
                missing = [m.name for m in await migrate.pending(con)]
                last_backup = None if missing else await backup_runs.last_success(con)
    except Exception as exc:  # any failure to reach the database means "not ready", never a 500
        return json_response({"status": "unavailable", "database": type(exc).__name__}, status=503)
    if missing:
        return json_response({"status": "unavailable", "pending_migrations": missing}, status=503)
    return json_response({"status": "ready", "backup": last_backup})
