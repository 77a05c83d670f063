"""The console's live side: an ack-timeout alert, and events missed while its socket was down."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, expect

from server.config import DispatchSettings
from tests.conftest import Api, app_config, start_api
from tests.e2e.conftest import CONSOLE, Network, Pages
from tests.server.dispatch_support import call_body

# Far from the first call, so re-offers for this second call never take the first call's candidates.
FAR_AWAY = {"lat": -6.3530, "lon": 106.6400}


@pytest.fixture
async def quick_api(demo_dsn: str) -> AsyncIterator[Api]:
    """The app with a 2 s acknowledgement deadline, so a timeout happens within the test."""
    config = dataclasses.replace(app_config(demo_dsn), dispatch=DispatchSettings(ack_timeout_s=2.0, ack_sweep_s=0.2))
    client = await start_api(demo_dsn, config)
    yield client
    await client.session.close()
    await client.server.close()


async def test_console_alerts_and_catches_up_after_a_cut(browser: Browser, quick_api: Api) -> None:
    pages = Pages(browser, quick_api)
    try:
        context = await pages.context(CONSOLE)
        network = Network()
        await context.route_web_socket("**/ws/operator*", network.route)
        console = await pages.login(context, "operator", "demo119", "/operator.html")
        await expect(console.locator("body")).to_have_attribute("data-ready", "true")
        operator = await quick_api.login("operator")

        # The socket is cut; a call comes in meanwhile (another operator's).
        await network.cut()
        await expect(console.locator("#conn-banner")).to_be_visible()
        status, created = await quick_api.call("POST", "/api/calls", operator, json=call_body(address="Jl. Selama Terputus 7"))
        assert status == 201, created
        incident_id = created["incident"]["id"]
        network.down = False
        # Resumed from the last event id: the missed call is on the board and the map.
        row = console.locator(f"#incident-board tr[data-incident-id='{incident_id}']")
        await expect(row).to_contain_text("Jl. Selama Terputus 7", timeout=15000)
        await expect(console.locator("#conn-banner")).to_be_hidden()
        await expect(console.locator(f"#map .incident-marker[data-incident-id='{incident_id}']")).to_have_count(1)

        # The operator opens it; meanwhile another operator sends its top unit elsewhere: dispatching
        # that unit is refused (409) and the console shows the fresh recommendation the server returns.
        await row.click()
        recommended = console.locator("#recommendations tr[data-unit-id]")
        await expect(recommended).to_have_count(5)
        taken = await recommended.first.get_attribute("data-unit-id")
        status, other = await quick_api.call("POST", "/api/calls", operator, json=call_body(
            phone="0813-0000-1111", location=FAR_AWAY, address="Jl. Jauh 1"))
        status, _ = await quick_api.call("POST", f"/api/incidents/{other['incident']['id']}/dispatch", operator, json={"unit_id": taken})
        assert status == 201
        await console.keyboard.press("Alt+1")
        await expect(console.locator("#dispatch-message.error")).to_contain_text("tidak tersedia")
        await expect(console.locator(f"#recommendations tr[data-unit-id='{taken}']")).to_have_count(0)
        first_id = await recommended.first.get_attribute("data-unit-id")
        first = {"unit_id": first_id, "callsign": await recommended.first.locator(".callsign").inner_text()}
        await console.keyboard.press("Alt+1")
        await expect(console.locator("#dispatch-message.ok")).to_contain_text(first["callsign"])

        # Nobody answers on that unit's phone: the console raises an ack-timeout alert naming it.
        await expect(row.locator(f".unit-tag[data-unit-id='{first_id}']")).to_have_count(1)
        # Re-offers time out too and raise more alerts: pin this unit's alert by its event id.
        named = console.locator(".alert.alert-ack_timeout", has_text=first["callsign"])
        await expect(named).to_have_count(1, timeout=10000)
        event_id = await named.get_attribute("data-event-id")
        alert = console.locator(f".alert[data-event-id='{event_id}']")
        await expect(alert).to_have_attribute("role", "alert")
        # The alert opens its incident in the dispatch panel; dismissing removes it.
        await alert.locator("button.link").click()
        await expect(console.locator("#call-result")).to_be_visible()
        await expect(row).to_have_class(re.compile(r"\bselected\b"))
        await alert.locator("button.dismiss").click()
        await expect(alert).to_have_count(0)
    finally:
        await pages.close()
    assert pages.errors == [], pages.errors
