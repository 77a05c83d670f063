"""The field-team page survives its websocket being cut, and gets a dispatch sent while it was away."""

from __future__ import annotations

import datetime as dt

import asyncpg
from playwright.async_api import Page, expect

from tests.conftest import Api
from tests.e2e.conftest import PHONE, Network, Pages, screenshot
from tests.server.dispatch_support import call_body

FIELD_UNIT = "ns-01"  # the demo account "field" is the crew of NS-01


async def online(page: Page) -> None:
    await expect(page.locator("body")).to_have_attribute("data-connection", "online", timeout=15000)
    await expect(page.locator("#conn-banner")).to_be_hidden()


async def field_phone(pages: Pages) -> tuple[Page, Network]:
    """The demo crew's phone page, online, with its socket going through a `Network` the test controls."""
    context = await pages.context(PHONE)
    network = Network()
    await context.route_web_socket("**/ws/unit*", network.route)
    phone = await pages.login(context, "field", "demo119", "/field.html")
    await online(phone)
    return phone, network


async def test_field_page_recovers_from_a_cut_and_gets_the_dispatch_it_missed(pages: Pages, api: Api, con: asyncpg.Connection) -> None:
    assert await con.fetchval("SELECT unit_id FROM users WHERE username = 'field'") == FIELD_UNIT
    phone, network = await field_phone(pages)
    await expect(phone.locator("#unit-status")).to_have_attribute("data-status", "available")

    # 1. The socket drops under the page: the banner says so, the page reconnects by itself and works.
    await phone.evaluate("window.__psc119.dropSocket()")
    await expect(phone.locator("#conn-banner")).to_be_visible()
    await online(phone)
    await phone.click("#status-buttons .status-button[data-status='unavailable']")
    await expect(phone.locator("#unit-status")).to_have_attribute("data-status", "unavailable")
    await phone.click("#status-buttons .status-button[data-status='available']")
    await expect(phone.locator("#unit-status")).to_have_attribute("data-status", "available")
    await expect(phone.locator("#outbox")).to_be_hidden()  # a press shows at once; the server has both once it is empty

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
    await expect(phone.locator("#outbox")).to_be_hidden()
    status, units = await api.call("GET", "/api/units", operator)
    assert next(u for u in units["units"] if u["id"] == FIELD_UNIT)["status"] == "en_route"
    assert await con.fetchval("SELECT acknowledged_at IS NOT NULL FROM assignments WHERE id = $1", sent["assignment"]["id"])


async def test_reports_made_without_signal_are_sent_later_with_their_times(pages: Pages, api: Api, con: asyncpg.Connection) -> None:
    phone, network = await field_phone(pages)
    operator = await api.login("operator")
    status, created = await api.call("POST", "/api/calls", operator, json=call_body())
    assert status == 201, created
    status, sent = await api.call("POST", f"/api/incidents/{created['incident']['id']}/dispatch", operator, json={"unit_id": FIELD_UNIT})
    assert status == 201, sent
    assignment_id = sent["assignment"]["id"]
    await phone.click("#accept")
    await expect(phone.locator("#unit-status")).to_have_attribute("data-status", "en_route")
    await expect(phone.locator("#outbox")).to_be_hidden()

    # Out of coverage: the crew still reports arrival, then leaves with the patient a little later.
    await network.cut()
    await expect(phone.locator("#conn-banner")).to_have_attribute("data-state", "reconnecting")
    await phone.click("#status-buttons .status-button[data-status='on_scene']")
    await expect(phone.locator("#outbox")).to_have_attribute("data-count", "1")
    await expect(phone.locator("#unit-status")).to_have_attribute("data-status", "on_scene")
    await expect(phone.locator("#action-message")).to_contain_text("Belum ada sinyal")
    await phone.wait_for_timeout(1200)
    await phone.click("#status-buttons .status-button[data-status='transporting']")  # offered from the server's table
    await expect(phone.locator("#outbox")).to_have_attribute("data-count", "2")
    await screenshot(phone, "field-no-signal")
    assert await con.fetchval("SELECT status FROM units WHERE id = $1", FIELD_UNIT) == "en_route"

    # Signal again: both reports go, in order, and count at the times the crew pressed them.
    back = await con.fetchval("SELECT now()")
    network.down = False
    await online(phone)
    await expect(phone.locator("#outbox")).to_be_hidden()
    await expect(phone.locator("#unit-status")).to_have_attribute("data-status", "transporting")
    times = await con.fetchrow("SELECT acknowledged_at, on_scene_at, transporting_at FROM assignments WHERE id = $1", assignment_id)
    assert times["acknowledged_at"] < times["on_scene_at"] < times["transporting_at"] < back
    assert times["transporting_at"] - times["on_scene_at"] >= dt.timedelta(seconds=1)

    # A report kept while offline survives a reload of the page, and goes once the signal is back.
    await network.cut()
    await expect(phone.locator("#conn-banner")).to_have_attribute("data-state", "reconnecting")
    await phone.click("#status-buttons .status-button[data-status='at_hospital']")
    await expect(phone.locator("#outbox")).to_have_attribute("data-count", "1")
    await phone.reload()
    await expect(phone.locator("#outbox")).to_have_attribute("data-count", "1")
    network.down = False
    await online(phone)
    await expect(phone.locator("#outbox")).to_be_hidden()
    await expect(phone.locator("#unit-status")).to_have_attribute("data-status", "at_hospital")
    assert await con.fetchval("SELECT status FROM units WHERE id = $1", FIELD_UNIT) == "at_hospital"
    assert await con.fetchval("SELECT count(*) FROM unit_status_log WHERE unit_id = $1 AND status = 'at_hospital'", FIELD_UNIT) == 1


async def test_a_report_whose_answer_never_comes_is_sent_again_and_counts_once(pages: Pages, api: Api, con: asyncpg.Connection) -> None:
    phone, network = await field_phone(pages)
    # The report is lost on its way while the socket stays up: no answer comes, so the page keeps it and,
    # still connected, sends it again at once; the server counts it once.
    network.lose = lambda message: '"status": "unavailable"' in str(message) or '"status":"unavailable"' in str(message)
    await phone.click("#status-buttons .status-button[data-status='unavailable']")
    await expect(phone.locator("#action-message")).to_contain_text("Status sekarang: Tidak tersedia", timeout=20000)  # the answer
    await expect(phone.locator("#outbox")).to_be_hidden()
    await expect(phone.locator("#unit-status")).to_have_attribute("data-status", "unavailable")
    assert len(network.lost) == 1
    assert await con.fetchval("SELECT status FROM units WHERE id = $1", FIELD_UNIT) == "unavailable"
    assert await con.fetchval("SELECT count(*) FROM unit_status_log WHERE unit_id = $1 AND status = 'unavailable'", FIELD_UNIT) == 1
