"""Every page works under the Content-Security-Policy: no refusal on any page, map tiles load from the configured
tile host (another origin, served here on loopback), and the live sockets connect."""

from __future__ import annotations

import dataclasses
import struct
import zlib
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, Page, expect

from server.config import WebSettings
from tests.conftest import app_config, start_api
from tests.e2e.conftest import CONSOLE, PHONE, Pages

# Each refusal the page sees, as the page's own script would (the event the CSP spec defines).
COLLECT = """window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => window.__csp.push(`${e.effectiveDirective} ${e.blockedURI}`));"""
PAGES = [  # (account, its page, viewport)
    ("operator", "/operator.html", CONSOLE),
    ("field", "/field.html", PHONE),
    ("puskesmas", "/puskesmas.html", CONSOLE),
    ("specialist", "/specialist.html", CONSOLE),
    ("hospital", "/hospital.html", CONSOLE),
    ("admin", "/admin.html", CONSOLE),
]


def png() -> bytes:
    """A 1x1 grey PNG: a map tile as far as the browser is concerned."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
    return b"\x89PNG\r\n\x1a\n" + header + chunk(b"IDAT", zlib.compress(b"\x00\x80")) + chunk(b"IEND", b"")


@dataclasses.dataclass
class Tiles:
    server: TestServer
    served: list[str]


@pytest.fixture
async def tiles() -> AsyncIterator[Tiles]:
    served: list[str] = []

    async def tile(request: web.Request) -> web.Response:
        served.append(request.path)
        return web.Response(body=png(), content_type="image/png")

    app = web.Application()
    app.router.add_get("/osm/{z}/{x}/{y}.png", tile)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    yield Tiles(server, served)
    await server.close()


@pytest.fixture
async def tiled_pages(browser: Browser, demo_dsn: str, tiles: Tiles) -> AsyncIterator[Pages]:
    tile_url = str(tiles.server.make_url("/osm/")) + "{z}/{x}/{y}.png"
    api = await start_api(demo_dsn, dataclasses.replace(app_config(demo_dsn), web=WebSettings(tile_url=tile_url)))
    opened = Pages(browser, api)
    try:
        yield opened
    finally:
        await opened.close()
        await api.session.close()
        await api.server.close()


async def open_page(pages: Pages, username: str, path: str, viewport: dict[str, int]) -> Page:
    context = await pages.context(viewport)
    await context.add_init_script(COLLECT)
    page = await pages.login(context, username, "demo119", path)
    await expect(page.locator("body")).to_have_attribute("data-connection", "online", timeout=15000)  # its socket: connect-src
    return page


async def test_every_page_runs_without_a_single_csp_refusal(tiled_pages: Pages, tiles: Tiles) -> None:
    pages = tiled_pages
    for username, path, viewport in PAGES:
        page = await open_page(pages, username, path, viewport)
        response = await page.goto(pages.url(path))  # the page's own document, as served
        assert response is not None and "frame-ancestors 'none'" in response.headers["content-security-policy"], path
        await expect(page.locator("body")).to_have_attribute("data-connection", "online", timeout=15000)
        if path == "/operator.html":
            await expect(page.locator("body")).to_have_attribute("data-ready", "true")
            # Leaflet's own CSS and script, and tiles from the configured host on another origin.
            await expect(page.locator("img.leaflet-tile-loaded").first).to_be_visible()
            assert tiles.served, "no tile was asked for"
        assert await page.evaluate("window.__csp") == [], (path, await page.evaluate("window.__csp"))
    assert pages.errors == []

    # The collector does see a refusal: an inline script injected into a page is refused and reported.
    page = await open_page(pages, "operator", "/operator.html", CONSOLE)
    await page.evaluate("""() => { const s = document.createElement("script"); s.textContent = "window.__ran = true";
                                   document.head.append(s); }""")
    await page.wait_for_function("() => window.__csp.length === 1")
    assert await page.evaluate("window.__ran === undefined")
    assert (await page.evaluate("window.__csp"))[0].startswith("script-src")
    assert len(pages.errors) == 1 and "Content Security Policy" in pages.errors[0], pages.errors
    pages.errors.clear()


async def test_the_console_at_1366x768_moves_its_map_without_a_refusal(tiled_pages: Pages, tiles: Tiles) -> None:
    # The console's first fit changes the zoom while tiles are loading: Leaflet blanks the tiles it drops with a data: image.
    page = await open_page(tiled_pages, "operator", "/operator.html", {"width": 1366, "height": 768})
    await expect(page.locator("body")).to_have_attribute("data-ready", "true")
    await expect(page.locator("img.leaflet-tile-loaded").first).to_be_visible()
    await page.wait_for_timeout(1500)  # the fit's zoom animation and the tile swap after it
    assert await page.evaluate("window.__csp") == []
    assert tiled_pages.errors == []
