"""What the pages load besides themselves: the web config and Leaflet from its PyPI package."""

from __future__ import annotations

import dataclasses

from server.config import WebSettings
from tests.conftest import Api, app_config, start_api


async def test_web_config_gives_the_tile_url_to_anyone(api: Api) -> None:
    status, body = await api.call("GET", "/api/web-config")
    assert status == 200
    assert body["tile_url"] == "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    assert body["default_language"] == "id"


async def test_an_empty_tile_url_means_no_tiles(demo_dsn: str) -> None:
    config = dataclasses.replace(app_config(demo_dsn), web=WebSettings(tile_url=""))
    client = await start_api(demo_dsn, config)
    try:
        status, body = await client.call("GET", "/api/web-config")
        assert (status, body["tile_url"]) == (200, "")
    finally:
        await client.session.close()
        await client.server.close()


async def test_leaflet_is_served_from_the_xstatic_package(api: Api) -> None:
    async with api.session.get(api.url("/vendor/leaflet/leaflet-src.esm.js")) as r:
        assert r.status == 200
        assert r.content_type in ("application/javascript", "text/javascript")
        assert "export" in await r.text()
    for escape in ("/vendor/leaflet/../../../../etc/passwd", "/vendor/leaflet/%2e%2e/%2e%2e/__init__.py", "/vendor/leaflet/nope.js"):
        status, body = await api.call("GET", escape)
        assert status == 404, escape


async def test_pages_and_modules_are_served(api: Api) -> None:
    for path in ("/", "/operator.html", "/field.html", "/js/live.js", "/i18n/id.js", "/css/app.css"):
        async with api.session.get(api.url(path)) as r:
            assert r.status == 200, path
