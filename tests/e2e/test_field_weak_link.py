"""The field page on a weak link, in Chromium through a proxy that cuts or silently blackholes it."""

from __future__ import annotations

import asyncio

import asyncpg
from playwright.async_api import Page, expect

from tests.conftest import Api
from tests.e2e.conftest import Pages, screenshot
from tests.e2e.weak_link_support import FIELD_UNIT, last_log_id, online, phone_through, proxy, reports
from tests.impair.tcp import LinkProxy
from tests.server.dispatch_support import call_body

__all__ = ["proxy"]  # the fixture, used by name
SHELL = {"/field.html", "/field.webmanifest", "/icons/field.svg", "/css/app.css", "/js/field.js", "/js/api.js", "/js/dom.js",
         "/js/i18n.js", "/js/live.js", "/js/ringer.js", "/i18n/id.js", "/i18n/en.js"}


async def standing_by(pages: Pages, con: asyncpg.Connection, proxy: LinkProxy) -> tuple[Page, int]:
    """The crew's phone online and available, and the unit's status log position before the test's reports."""
    phone = await phone_through(pages, proxy)
    await expect(phone.locator("#unit-status")).to_have_attribute("data-status", "available")
    return phone, await last_log_id(con)


async def press_twice(phone: Page) -> None:
    """Unavailable, then available again: each press pending at once, the second made before the first is answered."""
    await phone.click("#status-buttons .status-button[data-status='unavailable']", timeout=1000)
    await expect(phone.locator("#outbox")).to_have_attribute("data-count", "1", timeout=1000)
    await expect(phone.locator("#unit-status")).to_have_attribute("data-status", "unavailable", timeout=1000)
    await phone.click("#status-buttons .status-button[data-status='available']", timeout=1000)
    await expect(phone.locator("#outbox")).to_have_attribute("data-count", "2", timeout=1000)


async def test_a_silent_link_is_noticed_within_ten_seconds_and_presses_are_pending_at_once(
    pages: Pages, con: asyncpg.Connection, proxy: LinkProxy,
) -> None:
    phone, since = await standing_by(pages, con, proxy)
    loop = asyncio.get_running_loop()

    # The link dies without a FIN or RST. The page does not know yet, and the crew presses twice:
    # each press is pending at once, and the buttons never wait for an answer.
    proxy.blackhole()
    started = loop.time()
    await press_twice(phone)

    # Its own heartbeat finds the link dead: the banner is up within about ten seconds.
    await expect(phone.locator("body")).not_to_have_attribute("data-connection", "online", timeout=10000)
    await expect(phone.locator("#conn-banner")).to_be_visible()
    noticed = loop.time() - started
    assert noticed < 10.5, noticed
    await screenshot(phone, "field-blackholed")
    assert await reports(con, since) == []

    # The link comes back: both reports arrive, in order, once each (the first also crosses on the old socket).
    proxy.restore()
    await online(phone)
    await expect(phone.locator("#outbox")).to_be_hidden(timeout=15000)
    await expect(phone.locator("#unit-status")).to_have_attribute("data-status", "available")
    assert await reports(con, since) == ["unavailable", "available"]


async def test_a_press_made_while_a_report_is_in_flight_is_queued_and_sent_after_it(
    pages: Pages, con: asyncpg.Connection, proxy: LinkProxy,
) -> None:
    phone, since = await standing_by(pages, con, proxy)
    proxy.delay_s = 1.5  # each way: every request is in flight for three seconds
    await press_twice(phone)
    assert await reports(con, since) == []
    await expect(phone.locator("#outbox")).to_be_hidden(timeout=20000)
    await expect(phone.locator("#unit-status")).to_have_attribute("data-status", "available")
    assert await reports(con, since) == ["unavailable", "available"]
    assert await con.fetchval("SELECT status FROM units WHERE id = $1", FIELD_UNIT) == "available"


async def test_a_reload_without_signal_shows_the_phone_and_its_pending_reports(
    pages: Pages, api: Api, con: asyncpg.Connection, proxy: LinkProxy,
) -> None:
    phone = await phone_through(pages, proxy)
    # The page is an installable app whose service worker holds its shell.
    assert await phone.evaluate("navigator.serviceWorker.ready.then((r) => r.scope)") == proxy.url + "/field"
    cdp = await phone.context.new_cdp_session(phone)
    manifest = await cdp.send("Page.getAppManifest")
    assert manifest["errors"] == [] and manifest["url"] == proxy.url + "/field.webmanifest"
    # A test browser context is incognito, which alone keeps it from installing.
    errors = (await cdp.send("Page.getInstallabilityErrors"))["installabilityErrors"]
    assert [e["errorId"] for e in errors] == ["in-incognito"], errors

    operator = await api.login("operator")
    status, created = await api.call("POST", "/api/calls", operator, json=call_body(address="Jl. Tanpa Sinyal 5"))
    status, sent = await api.call("POST", f"/api/incidents/{created['incident']['id']}/dispatch", operator, json={"unit_id": FIELD_UNIT})
    assert status == 201, sent
    await phone.click("#accept")
    await expect(phone.locator("#unit-status")).to_have_attribute("data-status", "en_route")
    await expect(phone.locator("#outbox")).to_be_hidden()
    since = await last_log_id(con)

    # Out of coverage: a report is kept, then the page is reloaded. It comes back from the cache with the
    # dispatch, the status the crew reported and the pending report, and its buttons still queue presses.
    proxy.cut()
    await expect(phone.locator("body")).not_to_have_attribute("data-connection", "online")
    await phone.click("#status-buttons .status-button[data-status='on_scene']")
    await expect(phone.locator("#outbox")).to_have_attribute("data-count", "1")
    await phone.reload()
    await expect(phone.locator("#unit-status")).to_have_attribute("data-status", "on_scene")
    await expect(phone.locator("#outbox")).to_have_attribute("data-count", "1")
    await expect(phone.locator("#incident-details")).to_contain_text("Jl. Tanpa Sinyal 5")
    await expect(phone.locator("#incident-details")).to_contain_text("Pondok Aren")  # the kelurahan's name, not its code
    await expect(phone.locator("#conn-banner")).to_be_visible()
    await phone.click("#status-buttons .status-button[data-status='transporting']")
    await expect(phone.locator("#outbox")).to_have_attribute("data-count", "2")
    await screenshot(phone, "field-reloaded-offline")
    # The cache holds the page's own files and nothing else: no API answer, nothing about the incident.
    cached = await phone.evaluate("caches.keys().then((names) => Promise.all(names.map((n) => caches.open(n).then((c) => c.keys()))))"
                                  ".then((lists) => lists.flat().map((r) => new URL(r.url).pathname))")
    assert set(cached) == SHELL, cached
    assert await reports(con, since) == []

    # Signal again: both reports arrive, in order, once each.
    proxy.restore()
    await online(phone)
    await expect(phone.locator("#outbox")).to_be_hidden()
    await expect(phone.locator("#unit-status")).to_have_attribute("data-status", "transporting")
    assert await reports(con, since) == ["on_scene", "transporting"]


async def test_the_app_files_are_served_with_their_types_and_the_pages_policy(api: Api) -> None:
    javascript = ("application/javascript", "text/javascript")  # a service worker must come as JavaScript
    for path, kinds in (("/field.webmanifest", ("application/manifest+json",)), ("/field-sw.js", javascript),
                        ("/icons/field.svg", ("image/svg+xml",))):
        async with api.session.get(api.url(path)) as r:
            assert r.status == 200 and r.content_type in kinds, (path, r.content_type)
            assert "default-src 'self'" in r.headers["Content-Security-Policy"]
            assert r.headers["Cache-Control"] == "no-cache"
