"""An operator takes a call in the console and dispatches it; the crew's phone page accepts and walks every
status back to available; the console shows each change live on the unit board and on the map."""

from __future__ import annotations

import re

import asyncpg
from playwright.async_api import Page, expect

from tests.conftest import Api
from tests.e2e.conftest import CONSOLE, PHONE, Pages, screenshot
from tests.server.dispatch_support import CREW_PASSWORD, crew_for

# Where the crew's phone says it is: inside kelurahan Parigi (Pondok Aren).
PHONE_AT = {"latitude": -6.2731, "longitude": 106.6981}


async def expect_unit(console: Page, unit_id: str, status: str) -> None:
    """The console shows ``status`` for the unit on its board and on its map marker."""
    row = console.locator(f"#unit-board li[data-unit-id='{unit_id}']")
    await expect(row).to_have_class(re.compile(rf"\bst-{status}\b"))
    await expect(row.locator(".status-chip")).to_have_attribute("data-status", status)
    marker = console.locator(f"#map .unit-marker[data-unit-id='{unit_id}']")
    await expect(marker).to_have_class(re.compile(rf"\bst-{status}\b"))
    await expect(marker).to_have_attribute("data-status", status)


async def test_call_dispatch_and_every_status_seen_live(pages: Pages, api: Api, con: asyncpg.Connection) -> None:
    console = await pages.login(await pages.context(CONSOLE), "operator", "demo119", "/operator.html")
    await expect(console.locator("body")).to_have_attribute("data-ready", "true")
    # No tile server is reachable here: the units still show as markers.
    assert await console.locator("#map .unit-marker").count() == await con.fetchval("SELECT count(*) FROM units")
    await expect(console.locator("#f-phone")).to_be_focused()

    # Keyboard-first intake: type the number, choose the type and kelurahan, Enter saves.
    await console.keyboard.type("0812-3456-7890")
    await console.select_option("#f-call-type", "chest_pain")
    await console.select_option("#f-kelurahan", "kel-parigi")
    await expect(console.locator("#f-location")).to_contain_text("-6.27546")
    await console.fill("#f-address", "Jl. Parigi Lama 12")
    await console.fill("#f-complaint", "nyeri dada sejak 30 menit")
    await console.press("#f-complaint", "Enter")
    first = console.locator("#recommendations tr[data-unit-id]").first
    await expect(first).to_be_visible()
    await expect(console.locator("#recommendations tr[data-unit-id]")).to_have_count(5)
    await expect(console.locator("#recommendations button.dispatch").first).to_be_focused()
    # Chest pain needs transport: the units that can carry have their own list under the first responders.
    carriers = console.locator("#transport-recommendations tr[data-unit-id]")
    await expect(carriers).to_have_count(5)
    for carrier in await carriers.all():
        carries = await con.fetchval("SELECT capabilities FROM units WHERE id = $1", await carrier.get_attribute("data-unit-id"))
        assert "transport" in carries
    unit_id = await first.get_attribute("data-unit-id")
    assert unit_id
    callsign = await con.fetchval("SELECT callsign FROM units WHERE id = $1", unit_id)
    incident_row = console.locator("#incident-board tr.incident-row")
    await expect(incident_row).to_have_count(1)
    await expect(incident_row).to_have_class(re.compile(r"\bpr-merah\b"))
    await expect(console.locator("#map .incident-marker.pr-merah")).to_have_count(1)

    # The crew's phone: a field_team account bound to the recommended unit, GPS on.
    phone_context = await pages.context(PHONE, geolocation=PHONE_AT, permissions=["geolocation"])
    phone = await pages.login(phone_context, await crew_for(con, unit_id), CREW_PASSWORD, "/field.html")
    await expect(phone.locator("#unit-status")).to_have_attribute("data-status", "available")
    await expect(phone.locator("#idle")).to_be_visible()
    # Its GPS reaches the console's map.
    marker = console.locator(f"#map .unit-marker[data-unit-id='{unit_id}']")
    await expect(marker).to_have_attribute("data-lat", str(PHONE_AT["latitude"]))
    await expect(marker).to_have_attribute("data-lon", str(PHONE_AT["longitude"]))

    # One keystroke dispatches the top recommendation.
    await console.keyboard.press("Alt+1")
    await expect(console.locator("#dispatch-message")).to_contain_text(callsign)
    await expect_unit(console, unit_id, "dispatched")

    # The phone rings (vibrates) and shows the big accept button with the incident.
    await expect(phone.locator("#offer")).to_be_visible()
    await expect(phone.locator("body")).to_have_class(re.compile(r"\bringing\b"))
    assert await phone.evaluate("window.__vibrations.length") >= 1
    await expect(phone.locator("#incident-details")).to_contain_text("Jl. Parigi Lama 12")
    await expect(phone.locator("#nav-geo")).to_have_attribute("href", re.compile(r"^geo:-6\.27546,106\.69749"))
    await expect(phone.locator("#nav-google")).to_have_attribute("href", re.compile(r"destination=-6\.27546,106\.69749"))
    await screenshot(phone, "field-dispatch")
    await phone.click("#accept")
    await expect(phone.locator("#offer")).to_be_hidden()
    await expect(phone.locator("#unit-status")).to_have_attribute("data-status", "en_route")
    await expect_unit(console, unit_id, "en_route")

    for step in ("on_scene", "transporting", "at_hospital", "available"):
        await phone.click(f"#status-buttons .status-button[data-status='{step}']")
        await expect(phone.locator("#unit-status")).to_have_attribute("data-status", step)
        await expect_unit(console, unit_id, step)
        if step == "on_scene":
            # Only legal moves: transporting, or release with one of the three reasons.
            buttons = phone.locator("#status-buttons button")
            await expect(buttons).to_have_count(4)
            await expect(phone.locator("#status-buttons [data-reason]")).to_have_count(3)
            await expect(console.locator(f"#incident-board .unit-tag[data-unit-id='{unit_id}']")).to_have_attribute("data-status", "on_scene")
            await screenshot(console, "operator-console")
            await screenshot(phone, "field-on-scene")
    await expect(phone.locator("#idle")).to_be_visible()
    await expect(phone.locator("#status-buttons button")).to_have_count(2)  # unavailable, off duty

    # The timeline, then close the incident from the console.
    await console.keyboard.press("Alt+t")
    timeline = console.locator("#timeline li")
    await expect(timeline).to_have_count(8)
    await expect(console.locator("#timeline li[data-event='unit.dispatched']")).to_have_count(1)
    await console.keyboard.press("Escape")
    await console.select_option("#close-outcome", "emergency")
    await console.click("#close-incident")
    await expect(incident_row).to_have_count(0)
    await expect(console.locator("#map .incident-marker")).to_have_count(0)

    # Metrics: bars for the merah call just served.
    await console.keyboard.press("Alt+m")
    await expect(console.locator("#chart-priority rect.bar.p50")).to_have_count(2)  # legend + merah
    await expect(console.locator("#nfpa")).to_contain_text("NFPA 1225")
    await screenshot(console, "operator-metrics")
