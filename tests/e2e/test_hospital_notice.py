"""The hospital's page hears of a patient live: the crew chooses the hospital and reports on the way from its phone
(vitals entered without signal arrive once the link is back, at the time measured), the emergency department
acknowledges, the operator's console shows it, and the handover closes the notice."""

from __future__ import annotations

import datetime as dt
import re

import asyncpg
from playwright.async_api import expect

from tests.conftest import Api
from tests.e2e.conftest import CONSOLE, PHONE, Network, Pages, screenshot
from tests.e2e.weak_link_support import online
from tests.server.dispatch_support import CREW_PASSWORD, SCENE, call_body, crew_for

HOSPITAL = "rs-rsu-kota-tangsel"


async def test_a_pre_arrival_notice_reaches_the_hospital_page_live_and_is_acknowledged(pages: Pages, api: Api, con: asyncpg.Connection) -> None:
    operator = await api.login("operator")
    status, created = await api.call("POST", "/api/calls", operator, json=call_body(complaint="nyeri dada, keringat dingin"))
    assert status == 201, created
    incident_id, unit_id = created["incident"]["id"], created["recommendations"][0]["unit_id"]

    hospital = await pages.login(await pages.context(CONSOLE), "hospital", "demo119", "/hospital.html")
    await expect(hospital.locator("body")).to_have_attribute("data-ready", "true")
    await expect(hospital.locator("#notices .empty")).to_be_visible()
    console = await pages.login(await pages.context(CONSOLE), "operator", "demo119", "/operator.html")
    await expect(console.locator("body")).to_have_attribute("data-ready", "true")

    phone_context = await pages.context(PHONE, geolocation={"latitude": SCENE["lat"], "longitude": SCENE["lon"]}, permissions=["geolocation"])
    network = Network()
    await phone_context.route_web_socket("**/ws/unit*", network.route)
    phone = await pages.login(phone_context, await crew_for(con, unit_id), CREW_PASSWORD, "/field.html")
    await online(phone)
    status, _ = await api.call("POST", f"/api/incidents/{incident_id}/dispatch", operator, json={"unit_id": unit_id})
    assert status == 201
    await phone.click("#accept")
    await phone.click("#status-buttons .status-button[data-status='on_scene']")
    await expect(phone.locator("#unit-status")).to_have_attribute("data-status", "on_scene")

    # The crew chooses the hospital from the phone: the hospital's page shows the patient at once, and rings.
    await phone.select_option("#destination-choice", HOSPITAL)
    await phone.click("#send-destination")
    card = hospital.locator("#notices .notice-card")
    await expect(card).to_have_count(1)
    await expect(card).to_have_attribute("data-status", "sent")
    await expect(card).to_have_class(re.compile(r"\bpr-merah\b"))
    await expect(card).to_contain_text("nyeri dada, keringat dingin")
    await expect(hospital.locator("body")).to_have_class(re.compile(r"\bringing\b"))
    await expect(card.locator(".eta")).to_have_text("belum berangkat ke RS")

    # Without signal the crew enters vitals: kept on the phone, sent once the link is back, at the time measured.
    await network.cut()
    await expect(phone.locator("#conn-banner")).to_be_visible()
    await phone.fill("#v-systolic", "90")
    await phone.fill("#v-diastolic", "60")
    await phone.fill("#v-pulse", "118")
    await phone.fill("#v-spo2", "91")
    await phone.fill("#v-age", "58")
    await phone.select_option("#v-sex", "male")
    pressed = dt.datetime.now(dt.UTC)
    await phone.click("#save-vitals")
    await expect(phone.locator("#outbox")).to_be_visible()
    await phone.wait_for_timeout(1500)
    assert await con.fetchval("SELECT count(*) FROM incident_vitals") == 0
    network.down = False
    await online(phone)
    await expect(phone.locator("#outbox")).to_be_hidden()
    await expect(card).to_contain_text("Nadi 118")
    await expect(card).to_contain_text("TD 90/60")
    await expect(card).to_contain_text("58 th, laki-laki")
    measured = await con.fetchval("SELECT measured_at FROM incident_vitals")
    assert abs((measured - pressed).total_seconds()) < 2 and await con.fetchval("SELECT count(*) FROM incident_vitals") == 1

    # On the way: the hospital sees the unit transporting and its ETA counting down.
    await phone.click("#status-buttons .status-button[data-status='transporting']")
    await expect(card).to_contain_text("Mengantar pasien")
    await expect(card.locator(".eta")).to_have_text(re.compile(r"^\d+:\d\d$"))
    first = await card.locator(".eta").text_content()
    await hospital.wait_for_timeout(2100)
    assert await card.locator(".eta").text_content() != first

    # The console has the incident open; the acknowledgement shows there live.
    await console.locator("#incident-board tr.incident-row").first.click()
    await expect(console.locator("#notice-now")).to_contain_text("RSU Kota Tangerang Selatan")
    await expect(console.locator("#notice-now")).to_have_attribute("data-status", "sent")
    await card.locator("button.acknowledge").click()
    await expect(card).to_have_attribute("data-status", "acknowledged")
    await expect(hospital.locator("body")).not_to_have_class(re.compile(r"\bringing\b"))
    await expect(console.locator("#notice-now")).to_have_attribute("data-status", "acknowledged")
    await expect(console.locator("#notice-now")).to_contain_text("diterima RS")
    await expect(phone.locator("#action-message")).to_contain_text("siap menerima pasien")
    await screenshot(hospital, "hospital-notice-acknowledged")

    # Arrival and handover close it.
    await phone.click("#status-buttons .status-button[data-status='at_hospital']")
    await expect(card).to_contain_text("Di rumah sakit")
    await expect(phone.locator("#handover")).to_be_visible()  # the crew could record it too
    await card.locator("button.handover").click()
    await expect(card).to_have_attribute("data-status", "handed_over")
    assert await con.fetchval("SELECT status FROM prearrival_notices") == "handed_over"
    # The offload time is in the console's charts, per hospital.
    await console.click("#open-metrics")
    await expect(console.locator("#chart-offload")).to_contain_text("RSU Kota Tangerang Selatan")
    await expect(console.locator("#chart-offload")).to_contain_text("n=1")


async def test_a_decline_alerts_the_console_naming_the_hospital_and_reason(pages: Pages, api: Api, con: asyncpg.Connection) -> None:
    operator = await api.login("operator")
    status, created = await api.call("POST", "/api/calls", operator, json=call_body())
    incident_id = created["incident"]["id"]
    hospital = await pages.login(await pages.context(CONSOLE), "hospital", "demo119", "/hospital.html")
    await expect(hospital.locator("body")).to_have_attribute("data-ready", "true")
    console = await pages.login(await pages.context(CONSOLE), "operator", "demo119", "/operator.html")
    await expect(console.locator("body")).to_have_attribute("data-ready", "true")
    assert (await api.call("POST", f"/api/incidents/{incident_id}/destination", operator, json={"facility": HOSPITAL}))[0] == 200
    card = hospital.locator("#notices .notice-card")
    await expect(card).to_have_attribute("data-status", "sent")
    await expect(card).to_contain_text("belum diketahui")
    # The operator learns the patient's age and sex on the phone: the hospital sees them at once.
    await console.locator("#incident-board tr.incident-row").first.click()
    await expect(console.locator("#notice-now")).to_have_attribute("data-status", "sent")
    await console.fill("#patient-age", "34")
    await console.select_option("#patient-sex", "female")
    await console.click("#patient-form button[type=submit]")
    await expect(card).to_contain_text("34 th, perempuan")
    await card.locator("button.decline").click()
    await card.locator("input.decline-reason").fill("IGD penuh")
    await card.locator(".decline-form button[type=submit]").click()
    await expect(card).to_have_attribute("data-status", "declined")
    alert = console.locator("#alerts .alert-notice_declined")
    await expect(alert).to_contain_text("RSU Kota Tangerang Selatan menolak pasien: IGD penuh")
    await expect(console.locator("#notice-now")).to_have_attribute("data-status", "declined")
    await expect(console.locator("#notice-now")).to_contain_text("IGD penuh")
    # Opened again later, the incident shows its declined notice (which no longer carries the patient).
    await console.reload()
    await expect(console.locator("body")).to_have_attribute("data-ready", "true")
    await console.locator("#incident-board tr.incident-row").first.click()
    await expect(console.locator("#notice-now")).to_have_attribute("data-status", "declined")
    await expect(console.locator("#notice-now")).to_contain_text("IGD penuh")
    assert await console.input_value("#patient-age") == ""


async def test_a_handover_the_server_refuses_shows_its_button_again(pages: Pages, api: Api, con: asyncpg.Connection) -> None:
    """Pressed without signal, a handover waits in the phone's outbox with its button hidden; if the server refuses it
    once the link is back (the hospital declined meanwhile), the crew can press it again."""
    operator = await api.login("operator")
    status, created = await api.call("POST", "/api/calls", operator, json=call_body())
    assert status == 201, created
    incident_id, unit_id = created["incident"]["id"], created["recommendations"][0]["unit_id"]
    phone_context = await pages.context(PHONE, geolocation={"latitude": SCENE["lat"], "longitude": SCENE["lon"]}, permissions=["geolocation"])
    network = Network()
    await phone_context.route_web_socket("**/ws/unit*", network.route)
    phone = await pages.login(phone_context, await crew_for(con, unit_id), CREW_PASSWORD, "/field.html")
    await online(phone)
    assert (await api.call("POST", f"/api/incidents/{incident_id}/dispatch", operator, json={"unit_id": unit_id}))[0] == 201
    await phone.click("#accept")
    await phone.click("#status-buttons .status-button[data-status='on_scene']")
    await phone.select_option("#destination-choice", HOSPITAL)
    await phone.click("#send-destination")
    for status_name in ("transporting", "at_hospital"):
        await phone.click(f"#status-buttons .status-button[data-status='{status_name}']")
        await expect(phone.locator("#unit-status")).to_have_attribute("data-status", status_name)
    await expect(phone.locator("#outbox")).to_be_hidden()
    await expect(phone.locator("#handover")).to_be_visible()

    await network.cut()
    await expect(phone.locator("#conn-banner")).to_be_visible()
    hospital = await api.login("hospital")
    notice_id = await con.fetchval("SELECT id FROM prearrival_notices WHERE incident_id = $1", incident_id)
    status, body = await api.call("POST", f"/api/notices/{notice_id}/decline", hospital, json={"reason": "IGD penuh"})
    assert status == 200, body
    await phone.click("#handover")
    await expect(phone.locator("#handover")).to_be_hidden()
    await expect(phone.locator("#outbox")).to_be_visible()
    network.down = False
    await online(phone)
    await expect(phone.locator("#outbox")).to_be_hidden()
    await expect(phone.locator("#handover")).to_be_visible()
    assert await con.fetchval("SELECT status FROM prearrival_notices WHERE id = $1", notice_id) == "declined"
