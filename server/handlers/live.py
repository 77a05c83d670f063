"""The general live event socket, for every role."""

from __future__ import annotations

from aiohttp import web

from server.api_schemas import ANY
from server.keys import USER
from server.live import audience_of, serve_socket
from server.roles import ALL_ROLES
from server.routing import Routes

routes = Routes("live")


@routes.route("GET", "/ws/events", roles=ALL_ROLES, summary="Websocket: the events for the signed-in user; ?after=N resumes", returns={101: ANY})
async def events_socket(request: web.Request) -> web.StreamResponse:
    return await serve_socket(request, audience_of(request[USER]))
