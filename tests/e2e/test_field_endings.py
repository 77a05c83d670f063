"""The crew's page puts the usual next step first, and asks before a step that ends the case."""

from __future__ import annotations

import asyncpg
from playwright.async_api import expect

from tests.conftest import Api
from tests.e2e.conftest import PHONE, Pages
from tests.server.dispatch_support import CREW_PASSWORD, call_body, crew_for


async def test_on_scene_the_next_step_is_first_and_ending_the_case_asks(pages: Pages, api: Api, con: asyncpg.Connection) -> None:
    operator = await api.login("operator")
    status, created = await api.call("POST", "/api/calls", operator, json=call_body())
    unit_id = created["recommendations"][0]["unit_id"]
    phone = await pages.login(await pages.context(PHONE), await crew_for(con, unit_id), CREW_PASSWORD, "/field.html")
    await expect(phone.locator("#unit-status")).to_have_attribute("data-status", "available")
    status, _ = await api.call("POST", f"/api/incidents/{created['incident']['id']}/dispatch", operator, json={"unit_id": unit_id})
    assert status == 201
    await phone.click("#accept")
    await phone.click("#status-buttons .status-button[data-status='on_scene']")
    await expect(phone.locator("#unit-status")).to_have_attribute("data-status", "on_scene")
    await expect(phone.locator("#outbox")).to_be_hidden()  # shown at once; delivered once the outbox is empty

    buttons = phone.locator("#status-buttons button")
    await expect(buttons).to_have_count(4)
    await expect(buttons.first).to_have_attribute("data-status", "transporting")
    assert await phone.locator("#status-buttons button[data-reason]").evaluate_all("bs => bs.map(b => b.dataset.status)") == ["available"] * 3

    # One tap on an ending only asks; "back" changes nothing.
    no_patient = phone.locator("#status-buttons button[data-reason='no_patient']")
    await no_patient.click()
    dialog = phone.locator("#confirm-end")
    await expect(dialog).to_be_visible()
    await expect(phone.locator("#confirm-end-text")).to_have_text(
        "Selesai: tidak ada pasien? Kasus berakhir dan tidak dapat dibatalkan.")
    await phone.click("#confirm-end-no")
    await expect(dialog).to_be_hidden()
    await expect(phone.locator("#unit-status")).to_have_attribute("data-status", "on_scene")
    assert await con.fetchval("SELECT status FROM units WHERE id = $1", unit_id) == "on_scene"
    # Confirmed, it is sent.
    await no_patient.click()
    await phone.click("#confirm-end-yes")
    await expect(phone.locator("#unit-status")).to_have_attribute("data-status", "available")
    await expect(phone.locator("#outbox")).to_be_hidden()
    assert await con.fetchval(
        "SELECT reason FROM unit_status_log WHERE unit_id = $1 ORDER BY id DESC LIMIT 1", unit_id) == "no_patient"
