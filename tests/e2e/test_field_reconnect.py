"""The field-team page survives its websocket being cut, and gets a dispatch sent while it was away."""

from __future__ import annotations


import asyncpg
from playwright.async_api import Page, expect

from tests.conftest import Api
from tests.e2e.conftest import PHONE, Network, Pages, screenshot
from tests.server.dispatch_support import call_body

FIELD_UNIT = "ns-01"  # the demo account "field" is the crew of NS-01


async def online(page: Page) -> None:
    await expect(page.locator("body")).to_have_attribute("data-connection", "online", timeout=15000)
    await expect(page.locator("#conn-banner")).to_be_hidden()


async def test_field_page_recovers_from_a_cut_and_gets_the_dispatch_it_missed(pages: Pages, api: Api, con: asyncpg.Connection) -> None:
    assert await con.fetchval("SELECT unit_id FROM users WHERE username = 'field'") == FIELD_UNIT
    context = await pages.context(PHONE)
    network = Network()
    await context.route_web_socket("**/ws/unit*", network.route)
    phone = await pages.login(context, "field", "demo119", "/field.html")
    await online(phone)
    await expect(phone.locator("#unit-status")).to_have_attribute("data-status", "available")

    # 1. The socket drops under the page: the banner says so, the page reconnects by itself and works.
    await phone.evaluate("window.__psc119.dropSocket()")
    await expect(phone.locator("#conn-banner")).to_be_visible()
    await online(phone)
    await phone.click("#status-buttons .status-button[data-status='unavailable']")
    await expect(phone.locator("#unit-status")).to_have_attribute("data-status", "unavailable")
    await phone.click("#status-buttons .status-button[data-status='available']")
    await expect(phone.locator("#unit-status")).to_have_attribute("data-status", "available")

    # 2. The network goes away: the socket is closed under the page and reconnecting fails for a while.
    await network.cut()
    await expect(phone.locator("#conn-banner")).to_have_attribute("data-state", "reconnecting")
    await expect(phone.locator("#conn-banner")).to_be_visible()
    await phone.wait_for_timeout(1500)
    await expect(phone.locator("#conn-banner")).to_have_attribute("data-state", "reconnecting")
    await screenshot(phone, "field-reconnecting")

    # Meanwhile the operator dispatches this unit.
    operator = await api.login("operator")
    status, created = await api.call("POST", "/api/calls", operator, json=call_body(address="Jl. Ceger Raya 99"))
    assert status == 201, created
    status, sent = await api.call("POST", f"/api/incidents/{created['incident']['id']}/dispatch", operator, json={"unit_id": FIELD_UNIT})
    assert status == 201, sent
    await expect(phone.locator("#offer")).to_be_hidden()

    # 3. Back online: the page resumes, rings with the dispatch it missed, and the crew accepts it.
    network.down = False
    await online(phone)
    await expect(phone.locator("#offer")).to_be_visible()
    await expect(phone.locator("#incident-details")).to_contain_text("Jl. Ceger Raya 99")
    await phone.click("#accept")
    await expect(phone.locator("#unit-status")).to_have_attribute("data-status", "en_route")
    status, units = await api.call("GET", "/api/units", operator)
    assert next(u for u in units["units"] if u["id"] == FIELD_UNIT)["status"] == "en_route"
    assert await con.fetchval("SELECT acknowledged_at IS NOT NULL FROM assignments WHERE id = $1", sent["assignment"]["id"])
