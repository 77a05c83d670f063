"""A consult that ends in a transfer, in Chromium: the specialist refers to a hospital chosen from the list ranked from
the puskesmas, the hospital's IGD page receives the request live and accepts it, both doctors see the answer live,
and the inter-facility transfer appears on the operator console, linked to the referral."""

from __future__ import annotations

import asyncpg
from playwright.async_api import expect

from tests.conftest import Api
from tests.e2e.conftest import CONSOLE, Pages, screenshot
from tests.e2e.consult_support import fill_referral, ready
from tests.e2e.test_consult_pages import api  # noqa: F401  (the app with its attachments in a temporary directory)
from tests.server.test_consult_files import PNG, _post
from tests.server.test_consults import PATIENT, request_consult

HOSPITAL = "rs-rsu-kota-tangsel"  # the demo hospital account's


async def test_a_consult_ends_in_a_referral_accepted_on_the_hospital_page(pages: Pages, api: Api, con: asyncpg.Connection) -> None:
    pk = await api.login("puskesmas")
    status, body = await request_consult(api, pk)
    assert status == 201, body
    consult_id = body["consult"]["id"]
    assert (await _post(api, consult_id, pk, PNG, "image/png", "ekg.png"))[0] == 201
    status, body = await api.call("POST", f"/api/consults/{consult_id}/accept", await api.login("specialist"))
    assert status == 200, body

    hospital = await pages.login(await pages.context(CONSOLE), "hospital", "demo119", "/hospital.html")
    console = await pages.login(await pages.context(CONSOLE), "operator", "demo119", "/operator.html")
    pkm = await pages.login(await pages.context(CONSOLE), "puskesmas", "demo119", "/puskesmas.html")
    sp = await pages.login(await pages.context(CONSOLE), "specialist", "demo119", "/specialist.html")
    for page in (hospital, pkm, sp):
        await ready(page)
    await expect(console.locator("body")).to_have_attribute("data-ready", "true")
    await expect(hospital.locator("#referrals-empty")).to_be_visible()
    await pkm.click(f"#consult-list button[data-consult-id='{consult_id}']")

    # The specialist completes with a referral: ICU needed, the hospitals ranked from the puskesmas.
    await sp.click(f"#my-consults button[data-consult-id='{consult_id}']")
    await sp.fill("#soap-assessment", "Gagal jantung akut dengan edema paru")
    await sp.fill("#soap-plan", "Furosemid IV, oksigen, rujuk ke ICU")
    await fill_referral(sp, HOSPITAL, "i50.9", "Perlu ICU dan ventilasi non-invasif", service="icu", transport=True)
    await expect(sp.locator("#diagnoses option[value='I50.9']")).to_contain_text("Gagal jantung")
    await expect(sp.locator(f"#refer-hospital option[value='{HOSPITAL}']")).to_have_attribute("data-capable", "true")
    await sp.select_option("#refer-urgency", "emergency")
    await sp.click("#complete")
    await expect(sp.locator("#case")).to_have_attribute("data-state", "completed")

    # The IGD page receives it live: urgency, diagnosis, patient, the specialist's notes, the attachment.
    request = hospital.locator("#referral-list .referral-item")
    await expect(request).to_have_count(1)
    await expect(request).to_have_attribute("data-state", "requested")
    await expect(request.locator(".diagnosis")).to_have_text("I50.9")
    await expect(request).to_contain_text(PATIENT["chief_complaint"])
    await expect(request).to_contain_text("Gawat darurat")
    await expect(request.locator("a.attachment")).to_have_text("ekg.png")
    await request.locator("details.soap summary").click()
    await expect(request).to_contain_text("Gagal jantung akut dengan edema paru")
    for page in (pkm, sp):
        await expect(page.locator("#referral-status")).to_have_attribute("data-state", "requested")
    await screenshot(hospital, "hospital-referral-request")
    await request.locator("button.accept").click()
    await expect(request).to_have_attribute("data-state", "accepted")
    await expect(request.locator(".answered")).to_contain_text("Ambulans PSC 119 sudah dalam antrean")

    # Both doctors see the answer live, and the transfer.
    for page in (pkm, sp):
        await expect(page.locator("#referral-status")).to_have_attribute("data-state", "accepted")
        await expect(page.locator("#referral-status .transfer")).to_have_count(1)
    incident_id = await con.fetchval("SELECT incident_id::text FROM referrals WHERE consult_id = $1::uuid", consult_id)
    assert incident_id

    # The transfer is in the console's queue, merah, bound for the hospital, and says where it comes from.
    row = console.locator(f"#incident-board tr[data-incident-id='{incident_id}']")
    await expect(row).to_have_count(1)
    await expect(row).to_have_class("incident-row pr-merah")
    await expect(row).to_contain_text("Rujukan antar fasilitas")
    await row.click()
    await expect(console.locator("#result-details .referral-link")).to_contain_text(consult_id)
    await expect(console.locator("#destination-now")).to_contain_text("RSU Kota Tangerang Selatan")
    await screenshot(console, "console-interfacility-transfer")
    # Dispatched like any call: an ambulance, to carry the patient.
    await console.locator("#transport-recommendations button.dispatch").first.click()
    await expect(row).to_have_attribute("data-status", "dispatched")


async def test_the_referral_form_names_diagnoses_in_the_page_s_language(pages: Pages, api: Api) -> None:
    pk = await api.login("puskesmas")
    status, body = await request_consult(api, pk)
    assert status == 201, body
    consult_id = body["consult"]["id"]
    assert (await api.call("POST", f"/api/consults/{consult_id}/accept", await api.login("specialist")))[0] == 200
    sp = await pages.login(await pages.context(CONSOLE), "specialist", "demo119", "/specialist.html")
    await ready(sp)
    await sp.click("#lang-en")
    await expect(sp.locator("html")).to_have_attribute("lang", "en")
    await sp.click(f"#my-consults button[data-consult-id='{consult_id}']")
    await fill_referral(sp, HOSPITAL, "i50.9", "Needs ICU")
    await expect(sp.locator("#diagnoses option[value='I50.9']")).to_contain_text("Heart failure")
