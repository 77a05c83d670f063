"""The browser clients under web/, served as plain files."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from server.errors import NotFound
from server.roles import PUBLIC
from server.routing import Routes

WEB_ROOT = (Path(__file__).resolve().parent.parent.parent / "web").resolve()
routes = Routes("web")


@routes.route("GET", "/{path:(?!api/|ws/).*}", roles=PUBLIC, summary="The web clients (static files)")
async def static_file(request: web.Request) -> web.StreamResponse:
    relative = request.match_info["path"] or "index.html"
    target = (WEB_ROOT / relative).resolve()
    if target.is_dir():
        target = target / "index.html"
    if not target.is_relative_to(WEB_ROOT) or not target.is_file():
        raise NotFound(f"no file {relative}")
    response = web.FileResponse(target)
    response.headers["Cache-Control"] = "no-cache"
    return response
