"""The API's own description."""

from __future__ import annotations

from importlib import metadata

from aiohttp import web

from server import openapi
from server.api_schemas import OBJECT, STRING, obj
from server.keys import ENDPOINTS
from server.roles import PUBLIC
from server.routing import Routes, json_response

routes = Routes("docs")


@routes.route("GET", "/api/openapi.json", roles=PUBLIC, summary="This OpenAPI 3 document", returns={200: obj(openapi=STRING, paths=OBJECT, components=OBJECT)})
async def openapi_document(request: web.Request) -> web.Response:
    return json_response(openapi.build(request.app[ENDPOINTS], metadata.version("psc119")))
