"""The console's destination list for a chest-pain call in Pamulang: the hospitals with a cath lab come first, the
others apart, and a warning in Bahasa Indonesia says that the nearest hospital has none."""

from __future__ import annotations

import asyncpg
from playwright.async_api import expect

from tests.conftest import Api
from tests.e2e.conftest import CONSOLE, Pages, screenshot


async def test_chest_pain_lists_hospitals_with_a_cath_lab_first_and_warns(pages: Pages, api: Api, con: asyncpg.Connection) -> None:
    console = await pages.login(await pages.context(CONSOLE), "operator", "demo119", "/operator.html")
    await expect(console.locator("body")).to_have_attribute("data-ready", "true")
    await console.fill("#f-phone", "0813-3333-4444")
    await console.select_option("#f-call-type", "chest_pain")
    await console.select_option("#f-kelurahan", "kel-pamulang-barat")
    await console.press("#f-phone", "Enter")
    await expect(console.locator("#incident-board tr.incident-row")).to_have_count(1)

    with_lab = {r["code"] for r in await con.fetch("SELECT code FROM facilities WHERE kind = 'hospital' AND 'cath_lab' = ANY(services)")}
    capable = console.locator("#destination optgroup").nth(0)
    await expect(capable).to_have_attribute("label", "Memiliki cath lab (kateterisasi jantung)")
    await expect(capable.locator("option")).to_have_count(len(with_lab))
    assert {await o.get_attribute("value") for o in await capable.locator("option").all()} == with_lab
    lacking = console.locator("#destination optgroup").nth(1)
    await expect(lacking).to_have_attribute("label", "Tidak memiliki cath lab (kateterisasi jantung)")
    await expect(lacking.locator("option[data-capable='false']").first).to_have_attribute("value", "rs-rsu-kota-tangsel")
    warning = console.locator("#hospital-warnings .warn-hospital")
    await expect(warning).to_have_attribute("data-kind", "nearest_lacks_service")
    await expect(warning).to_contain_text("RS terdekat, RSU Kota Tangerang Selatan, tidak memiliki cath lab")
    first_capable = await capable.locator("option").first.get_attribute("value")
    name = await con.fetchval("SELECT name FROM facilities WHERE code = $1", first_capable)
    await expect(warning).to_contain_text(f"Terdekat yang memiliki: {name}")
    await screenshot(console, "console-hospitals-cath-lab")


async def test_the_triage_editor_keeps_and_sets_the_service_a_call_type_needs(pages: Pages, con: asyncpg.Connection) -> None:
    admin = await pages.login(await pages.context(CONSOLE), "admin", "demo119", "/admin.html")
    chest = admin.locator("#triage tr[data-code='chest_pain']")
    await expect(chest.locator("select[name=service]")).to_have_value("cath_lab")
    # Saving another field of the row keeps its service.
    await chest.locator("[name=label_en]").fill("Chest pain (suspected STEMI)")
    await chest.locator("button.save").click()
    await expect(admin.locator("#triage-message")).to_contain_text("chest_pain")
    assert await con.fetchval("SELECT (label_en, service)::text FROM triage_types WHERE code = 'chest_pain'") == (
        '("Chest pain (suspected STEMI)",cath_lab)')
    seizure = admin.locator("#triage tr[data-code='seizure']")
    await seizure.locator("select[name=service]").select_option("ct")
    await seizure.locator("button.save").click()
    await expect(admin.locator("#triage-message")).to_contain_text("seizure")
    assert await con.fetchval("SELECT service FROM triage_types WHERE code = 'seizure'") == "ct"
