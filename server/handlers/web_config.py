"""What the browser clients need to know before anyone signs in: the map tile source, and how
the consult pages connect (relay only or not) and adapt their video to a weak link."""

from __future__ import annotations

from aiohttp import web

from server.api_schemas import NUMBER, STRING, array, obj
from server.keys import CONFIG
from server.roles import PUBLIC
from server.routing import Routes, json_response

routes = Routes("web")


MEDIA = obj(ice_transport_policy=STRING, max_bitrate=NUMBER, min_fps=NUMBER)


@routes.route("GET", "/api/web-config", roles=PUBLIC, summary="Settings for the web clients: the map tile URL template (empty: no tiles), consult media", returns={200: obj(tile_url=STRING, languages=array(STRING), default_language=STRING, media=MEDIA)})
async def web_config(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    settings = config.web
    media = {
        "ice_transport_policy": "relay" if config.ice.relay_only else "all",
        "max_bitrate": config.media.max_bitrate,
        "min_fps": config.media.min_fps,
    }
    return json_response({"tile_url": settings.tile_url, "languages": ["id", "en"], "default_language": "id", "media": media})
