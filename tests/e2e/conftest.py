"""Browser tests: Debian's Chromium driven by Playwright against the real app on a real database.

Only loopback is used: the app listens on 127.0.0.1, and map tiles (an outside URL) simply fail to load,
which is the case the pages must survive (markers without tiles).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, WebSocketRoute, async_playwright, expect

from tests.conftest import REPO, Api

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox", "--use-fake-device-for-media-stream=fps=30", "--use-fake-ui-for-media-stream",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
    "--disable-features=WebRtcHideLocalIpsWithMdns", "--allow-loopback-in-peer-connection",
    "--autoplay-policy=no-user-gesture-required",
]
ARTIFACTS = REPO / "test-artifacts"
CONSOLE = {"width": 1280, "height": 800}
PHONE = {"width": 360, "height": 740}
# Records what the page asks the vibration motor to do, so a test can see a dispatch "ring".
RECORD_VIBRATION = "window.__vibrations = []; navigator.vibrate = (p) => { window.__vibrations.push(p); return true; };"

expect.set_options(timeout=10000)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium package")
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        yield browser
        await browser.close()


class Pages:
    """Opens browser contexts and pages, and remembers every uncaught error, unhandled rejection or CSP refusal."""

    def __init__(self, browser: Browser, api: Api) -> None:
        self.browser = browser
        self.api = api
        self.errors: list[str] = []
        self.contexts: list[BrowserContext] = []

    def url(self, path: str) -> str:
        return self.api.url(path)

    async def context(self, viewport: dict[str, int], **options: Any) -> BrowserContext:
        context = await self.browser.new_context(viewport=viewport, **options)
        await context.add_init_script(RECORD_VIBRATION)
        self.contexts.append(context)
        return context

    async def page(self, context: BrowserContext) -> Page:
        page = await context.new_page()
        page.on("pageerror", lambda exc: self.errors.append(f"{page.url}: {exc}"))
        # Whatever the Content-Security-Policy refuses is a page that does not work as built: Chromium logs each refusal.
        page.on("console", lambda m: self.errors.append(f"{page.url}: {m.text}") if "Content Security Policy" in m.text else None)
        return page

    async def login(self, context: BrowserContext, username: str, password: str, lands_on: str) -> Page:
        page = await self.page(context)
        await page.goto(self.url("/"))
        await page.fill("#username", username)
        await page.fill("#password", password)
        await page.press("#password", "Enter")
        await page.wait_for_url(f"**{lands_on}")
        return page

    async def close(self) -> None:
        for context in self.contexts:
            await context.close()


@pytest.fixture
async def pages(browser: Browser, api: Api) -> AsyncIterator[Pages]:
    opened = Pages(browser, api)
    yield opened
    await opened.close()
    assert opened.errors == [], opened.errors


class Network:
    """Stands between a page and the server's websockets: passes sockets through, cuts and refuses them,
    or loses the next message from the page that ``lose`` matches."""

    def __init__(self) -> None:
        self.down = False
        self.sockets: list[WebSocketRoute] = []
        self.lose: Callable[[str | bytes], bool] | None = None
        self.lost: list[str | bytes] = []

    async def route(self, ws: WebSocketRoute) -> None:
        if self.down:
            await ws.close(code=1001, reason="network down")
            return
        self.sockets.append(ws)
        server = ws.connect_to_server()

        def to_server(message: str | bytes) -> None:
            if self.lose is not None and self.lose(message):
                self.lose = None
                self.lost.append(message)
                return
            server.send(message)

        ws.on_message(to_server)

    async def cut(self) -> None:
        self.down = True
        for ws in self.sockets:
            await ws.close(code=1001, reason="network down")
        self.sockets.clear()


async def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path))
    return path
