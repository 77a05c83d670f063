"""The hospital's availability board in Chromium: the IGD desk of RSU Kota Tangerang Selatan changes its free IGD beds
with two taps and switches its CT off with one, and the operator's destination list for a stroke in Pamulang shows both
live, with the warning that the nearest hospital's CT is not available now."""

from __future__ import annotations

import asyncpg
from playwright.async_api import expect

from tests.conftest import Api
from tests.e2e.conftest import CONSOLE, PHONE, Pages, screenshot

RSU = "rs-rsu-kota-tangsel"


async def test_two_taps_on_the_hospital_page_reach_the_operator_s_hospital_list_live(pages: Pages, api: Api, con: asyncpg.Connection) -> None:
    # Another hospital's figures went stale (no waiting: their time is moved back): both pages mark them.
    await con.execute("UPDATE hospital_beds SET set_at = now() - interval '7 hours' WHERE facility_code = 'rs-eka-hospital-bsd'")
    await con.execute("UPDATE hospital_beds SET set_at = now() - interval '25 minutes' WHERE facility_code = $1", RSU)
    console = await pages.login(await pages.context(CONSOLE), "operator", "demo119", "/operator.html")
    desk = await pages.login(await pages.context(PHONE), "hospital", "demo119", "/hospital.html")
    await expect(console.locator("body")).to_have_attribute("data-ready", "true")
    await expect(desk.locator("body")).to_have_attribute("data-ready", "true")

    igd = desk.locator("#board-own li[data-bed-class='igd']")
    await expect(igd.locator("output")).to_have_text("4")  # the demo's figure
    await expect(igd.locator(".board-age")).to_have_text("25 menit lalu")  # its age, in Bahasa Indonesia

    await console.fill("#f-phone", "0813-5555-6666")
    await console.select_option("#f-call-type", "stroke")
    await console.select_option("#f-kelurahan", "kel-pamulang-barat")
    await console.press("#f-phone", "Enter")
    await expect(console.locator("#incident-board tr.incident-row")).to_have_count(1)
    rsu = console.locator(f"#destination option[value='{RSU}']")
    await expect(rsu).to_contain_text("IGD 4")
    await expect(rsu).to_contain_text("CT scan tersedia")
    await expect(console.locator("#destination option[value='rs-eka-hospital-bsd']")).to_contain_text("(data lama)")
    await expect(console.locator("#hospital-warnings .warn-hospital")).to_have_count(0)

    # Two taps: two more free IGD beds, each saved at once.
    plus = igd.locator("button.board-step").nth(1)
    await plus.click()
    await plus.click()
    await expect(igd.locator("output")).to_have_text("6")
    await expect(igd.locator(".board-age")).to_have_text("baru saja")
    await expect(rsu).to_contain_text("IGD 6")  # live on the console, no reload
    assert await con.fetchrow("SELECT free, set_by FROM hospital_beds WHERE facility_code = $1 AND bed_class = 'igd'", RSU) == (6, "hospital")

    # One tap: the CT is down now. The console says so on the hospital's line, ranks it after those whose CT runs, and warns.
    ct = desk.locator("#board-own li[data-service='ct'] button")
    await expect(ct).to_have_attribute("aria-pressed", "true")
    await ct.click()
    await expect(ct).to_have_attribute("aria-pressed", "false")
    await expect(ct).to_contain_text("tidak tersedia")
    await expect(rsu).to_contain_text("CT scan TIDAK tersedia")
    await expect(rsu).to_have_attribute("data-readiness", "not_ready")
    warning = console.locator("#hospital-warnings .warn-hospital")
    await expect(warning).to_have_attribute("data-kind", "nearest_service_down")
    await expect(warning).to_contain_text("RS terdekat, RSU Kota Tangerang Selatan, memiliki CT scan tetapi sedang tidak tersedia")
    await expect(warning).to_contain_text("Terdekat yang siap:")
    assert await con.fetchval("SELECT available FROM hospital_service_states WHERE facility_code = $1 AND service = 'ct'", RSU) is False
    eka = desk.locator("#board-others tr[data-code='rs-eka-hospital-bsd']")
    await expect(eka.locator("td.is-stale")).to_have_count(6)
    # Eka's desk confirms its IGD (here through the API): the board on this page shows it at once, no longer stale.
    status, _ = await api.call("PATCH", "/api/hospitals/rs-eka-hospital-bsd/availability", await api.login("admin"), json={"beds": {"igd": 9}})
    assert status == 200
    await expect(eka.locator("td").nth(1)).to_have_text("9")
    await expect(eka.locator("td.is-stale")).to_have_count(5)
    await screenshot(desk, "hospital-board")
    await screenshot(console, "console-hospitals-availability")
