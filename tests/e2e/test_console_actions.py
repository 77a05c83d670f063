"""The console's incident panel beyond the first dispatch: withdraw a unit (the crew's phone stops ringing),
raise or lower the priority, choose the destination hospital (the crew's phone shows it and routes there
once the patient is on board), and record a status the crew reported by radio."""

from __future__ import annotations

import re

import asyncpg
from playwright.async_api import Page, expect

from tests.conftest import Api
from tests.e2e.conftest import CONSOLE, PHONE, Pages, screenshot
from tests.server.dispatch_support import CREW_PASSWORD, crew_for


async def take_call(console: Page) -> str:
    """A kuning call in kelurahan Serpong through the intake form; the id of its incident."""
    await console.fill("#f-phone", "0813-1111-2222")
    await console.select_option("#f-call-type", "elderly_fall")
    await console.select_option("#f-kelurahan", "kel-serpong")
    await console.press("#f-phone", "Enter")
    row = console.locator("#incident-board tr.incident-row")
    await expect(row).to_have_count(1)
    incident_id = await row.get_attribute("data-incident-id")
    assert incident_id
    return incident_id


async def test_withdraw_priority_and_destination_from_the_panel(pages: Pages, api: Api, con: asyncpg.Connection) -> None:
    console = await pages.login(await pages.context(CONSOLE), "operator", "demo119", "/operator.html")
    await expect(console.locator("body")).to_have_attribute("data-ready", "true")
    incident_id = await take_call(console)
    await expect(console.locator("#incident-board tr.incident-row")).to_have_class(re.compile(r"\bpr-kuning\b"))
    await expect(console.locator("#serving li.hint")).to_be_visible()  # nobody sent yet
    first = console.locator("#recommendations tr[data-unit-id]").first
    await expect(first).to_be_visible()
    unit_id = await first.get_attribute("data-unit-id")
    assert unit_id

    phone = await pages.login(await pages.context(PHONE), await crew_for(con, unit_id), CREW_PASSWORD, "/field.html")
    await expect(phone.locator("#unit-status")).to_have_attribute("data-status", "available")

    # Dispatch, then withdraw before the crew accepts: the phone stops ringing and says why.
    await console.keyboard.press("Alt+1")
    serving = console.locator(f"#serving li[data-unit-id='{unit_id}']")
    await expect(serving).to_have_attribute("data-status", "dispatched")
    await expect(phone.locator("#offer")).to_be_visible()
    await serving.locator("button.withdraw").click()
    await expect(console.locator("#dispatch-message")).to_contain_text("ditarik")
    await expect(serving).to_have_count(0)
    await expect(console.locator(f"#unit-board li[data-unit-id='{unit_id}']")).to_have_attribute("data-status", "available")
    await expect(phone.locator("#offer")).to_be_hidden()
    await expect(phone.locator("#unit-status")).to_have_attribute("data-status", "available")
    await expect(phone.locator("#action-message")).to_contain_text("dibatalkan operator")
    # Available again, so it is offered again.
    await expect(console.locator(f"#recommendations tr[data-unit-id='{unit_id}']")).to_have_count(1)
    withdrawn = await con.fetchrow("SELECT end_reason, ended_at FROM assignments WHERE incident_id = $1", incident_id)
    assert withdrawn["end_reason"] == "cancelled" and withdrawn["ended_at"] is not None

    # A callback says it is worse: raise it to merah; the board re-sorts and recolours at once.
    await console.select_option("#result-priority", "merah")
    await expect(console.locator("#dispatch-message")).to_contain_text("Merah")
    await expect(console.locator("#incident-board tr.incident-row")).to_have_class(re.compile(r"\bpr-merah\b"))
    assert await con.fetchval("SELECT priority FROM incidents WHERE id = $1", incident_id) == "merah"

    # Send it again; once the crew is on scene it can no longer be withdrawn from the console.
    await console.click(f"#recommendations tr[data-unit-id='{unit_id}'] button.dispatch")
    await expect(phone.locator("#offer")).to_be_visible()
    await phone.click("#accept")
    await phone.click("#status-buttons .status-button[data-status='on_scene']")
    await expect(serving).to_have_attribute("data-status", "on_scene")
    await expect(serving.locator("button.withdraw")).to_have_count(0)

    # The destination: the nearest hospital by ETA is listed first; the crew sees its name.
    options = console.locator("#destination option")
    await expect(options).to_have_count(1 + await con.fetchval("SELECT count(*) FROM facilities WHERE kind = 'hospital'"))
    hospital = await options.nth(1).get_attribute("value")
    name, lat, lon = await con.fetchrow("SELECT name, lat, lon FROM facilities WHERE code = $1", hospital)
    await console.select_option("#destination", hospital)
    await console.click("#set-destination")
    await expect(console.locator("#destination-now")).to_contain_text(name)
    await expect(phone.locator("#incident-details")).to_contain_text(name)
    await expect(phone.locator("#nav-to")).to_have_attribute("data-target", "scene")
    # The crew radios that the patient is on board: the operator records it, the phone follows, and
    # with the patient on board its route goes to the hospital.
    await serving.locator("select.radio-status").select_option(label="Mengantar pasien")
    await expect(console.locator("#dispatch-message")).to_contain_text("radio")
    await expect(serving).to_have_attribute("data-status", "transporting")
    await expect(phone.locator("#unit-status")).to_have_attribute("data-status", "transporting")
    await expect(phone.locator("#nav-to")).to_have_attribute("data-target", "hospital")
    await expect(phone.locator("#nav-to")).to_contain_text(name)
    await expect(phone.locator("#nav-geo")).to_have_attribute("href", f"geo:{lat},{lon}?q={lat},{lon}")
    assert await con.fetchval("SELECT destination FROM incidents WHERE id = $1", incident_id) == hospital
    await screenshot(console, "operator-incident-panel")
    await screenshot(phone, "field-to-hospital")
