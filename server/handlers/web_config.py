"""What the browser clients need to know before anyone signs in: the map tile source."""

from __future__ import annotations

from aiohttp import web

from server.api_schemas import STRING, array, obj
from server.keys import CONFIG
from server.roles import PUBLIC
from server.routing import Routes, json_response

routes = Routes("web")


@routes.route("GET", "/api/web-config", roles=PUBLIC, summary="Settings for the web clients: the map tile URL template (empty: no tiles)", returns={200: obj(tile_url=STRING, languages=array(STRING), default_language=STRING)})
async def web_config(request: web.Request) -> web.Response:
    settings = request.app[CONFIG].web
    return json_response({"tile_url": settings.tile_url, "languages": ["id", "en"], "default_language": "id"})
