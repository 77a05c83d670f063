"""The browser clients under web/, served as plain files, and the vendored libraries they load.

Leaflet comes from the PyPI package ``xstatic-leaflet`` (a dependency), served
from its own directory at ``/vendor/leaflet/``: nothing is copied by hand.
"""

from __future__ import annotations

from pathlib import Path

import xstatic.pkg.leaflet as leaflet
from aiohttp import web

from server.api_schemas import FILE
from server.errors import NotFound
from server.roles import PUBLIC
from server.routing import Routes

WEB_ROOT = (Path(__file__).resolve().parent.parent.parent / "web").resolve()
LEAFLET_ROOT = Path(leaflet.BASE_DIR).resolve()
routes = Routes("web")


def _file(root: Path, relative: str, cache: str) -> web.FileResponse:
    try:
        target = (root / relative).resolve()
        if target.is_dir():
            target = target / "index.html"
        found = target.is_relative_to(root) and target.is_file()
    except OSError:  # a name too long for the file system names no file here either
        found = False
    if not found:
        raise NotFound(f"no file {relative[:200]}", field="path")
    response = web.FileResponse(target)
    response.headers["Cache-Control"] = cache
    return response


# Declared before the catch-all below, so it is matched first.
@routes.route("GET", "/vendor/leaflet/{path:.*}", roles=PUBLIC, summary=f"Leaflet {leaflet.VERSION} (from the xstatic-leaflet package)", returns={200: FILE})
async def leaflet_file(request: web.Request) -> web.StreamResponse:
    return _file(LEAFLET_ROOT, request.match_info["path"], "public, max-age=86400")


@routes.route("GET", "/{path:(?!api/|ws/).*}", roles=PUBLIC, summary="The web clients (static files)", returns={200: FILE})
async def static_file(request: web.Request) -> web.StreamResponse:
    return _file(WEB_ROOT, request.match_info["path"] or "index.html", "no-cache")
