"""The puskesmas and specialist pages in Chromium: a real WebRTC video consult with the fake camera and
microphone (frames decoded on both sides, chat both ways, SOAP notes and a referral), and a store-and-forward
consult answered in writing."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from playwright.async_api import FilePayload, Page, expect

from server.config import ServerSettings
from tests.conftest import Api, app_config, start_api
from tests.e2e.conftest import CONSOLE, Pages, screenshot
from tests.e2e.consult_support import fill_referral, frames_growing, ready
from tests.server.test_consults import PATIENT, add_users, close_api

# The smallest valid PNG: the server checks an attachment's first bytes against its type.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)
HOSPITAL = "RSU Kota Tangerang Selatan"


@pytest.fixture
async def api(demo_dsn: str, tmp_path: Path) -> AsyncIterator[Api]:
    """The app (under the browser pages here too) with its attachments in a temporary directory."""
    client = await start_api(demo_dsn, dataclasses.replace(app_config(demo_dsn), server=ServerSettings(var_dir=str(tmp_path))))
    yield client
    await close_api(client)


async def go_on_call(specialist: Page, specialty: str = "jantung") -> None:
    await specialist.check(f"#oncall-{specialty}")
    await expect(specialist.locator(f"#oncall-{specialty}")).to_be_checked()


async def test_video_consult_between_the_two_pages(pages: Pages, api: Api, con: asyncpg.Connection) -> None:
    pkm = await pages.login(await pages.context(CONSOLE), "puskesmas", "demo119", "/puskesmas.html")
    sp = await pages.login(await pages.context(CONSOLE), "specialist", "demo119", "/specialist.html")
    await ready(pkm)
    await ready(sp)

    # The puskesmas doctor requests a tele-EKG consult with an ECG image.
    await pkm.select_option("#r-service", "tele_ekg")
    await pkm.select_option("#r-specialty", "jantung")
    await pkm.select_option("#r-urgency", "emergency")
    await pkm.fill("#r-age", "58")
    await pkm.select_option("#r-sex", "male")
    await pkm.fill("#r-complaint", "nyeri dada kiri sejak 2 jam")
    await pkm.fill("#v-systolic_bp", "150")
    await pkm.fill("#v-diastolic_bp", "95")
    await pkm.fill("#v-spo2", "94")
    await pkm.fill("#r-question", "Apakah ini STEMI? <b>Perlu rujuk?</b>")
    await pkm.set_input_files("#r-files", files=[FilePayload(name="ekg-12-lead.png", mimeType="image/png", buffer=PNG)])
    await pkm.click("#request-submit")
    await expect(pkm.locator("#request-message")).to_contain_text("1")
    await expect(pkm.locator("#case")).to_have_attribute("data-state", "requested")
    await expect(pkm.locator("#case-attachments")).to_contain_text("ekg-12-lead.png")
    consult_id = await pkm.locator("#case").get_attribute("data-consult-id")
    await screenshot(pkm, "puskesmas-requested")

    # The specialist goes on call, sees it in the queue and accepts; the puskesmas page follows live.
    await go_on_call(sp)
    row = sp.locator(f"#queue tr[data-consult-id='{consult_id}']")
    await expect(row).to_contain_text("Gawat darurat")
    await screenshot(sp, "specialist-queue")
    await row.locator("button.accept").click()
    await expect(sp.locator("#case")).to_have_attribute("data-state", "accepted")
    # Server text stays text: the question's markup is shown, not interpreted.
    await expect(sp.locator("#case-body")).to_contain_text("<b>Perlu rujuk?</b>")
    await expect(sp.locator("#case-attachments a.attachment")).to_have_text("ekg-12-lead.png")
    async with sp.expect_download() as download_info:
        await sp.click("#case-attachments a.attachment")
    download = await download_info.value
    assert download.suggested_filename == "ekg-12-lead.png"
    assert Path(await download.path()).read_bytes() == PNG
    await expect(pkm.locator("#case")).to_have_attribute("data-state", "accepted")
    # Each side sees who is on the other end.
    names = dict(await con.fetch("SELECT username, display_name FROM users WHERE username IN ('puskesmas', 'specialist')"))
    facility = await con.fetchval(
        "SELECT f.name FROM users u JOIN facilities f ON f.code = u.facility_code WHERE u.username = 'puskesmas'"
    )
    await expect(pkm.locator("#case-body")).to_contain_text(names["specialist"])
    await expect(sp.locator("#case-body")).to_contain_text(f"{names['puskesmas']} · {facility}")

    # Both open the video room: media flows both ways.
    await pkm.click("#join-room")
    await sp.click("#join-room")
    await expect(pkm.locator("#room-state")).to_have_attribute("data-state", "connected")
    await expect(sp.locator("#room-state")).to_have_attribute("data-state", "connected")
    await expect(pkm.locator("#room-peer")).to_contain_text(names["specialist"])
    deadline = time.monotonic() + 15
    assert await frames_growing(pkm, deadline) > 0
    assert await frames_growing(sp, deadline) > 0
    await expect(pkm.locator("#case")).to_have_attribute("data-state", "in_session")
    roles = await pkm.evaluate("({polite: window.__room.peer.polite, offerer: window.__room.peer.offerer})")
    assert roles == {"polite": True, "offerer": True}  # the requester's browser, towards the specialist's
    await expect(pkm.locator("#room-quality")).to_contain_text("RTT")

    # Chat both ways.
    await pkm.fill("#chat-text", "Selamat siang dok, EKG terlampir.")
    await pkm.press("#chat-text", "Enter")
    await expect(sp.locator("#chat-log")).to_contain_text("Selamat siang dok, EKG terlampir.")
    await expect(sp.locator("#chat-log li.theirs .who").last).to_have_text(f"{names['puskesmas']} · {facility}")
    await sp.fill("#chat-text", "Siang, saya lihat <i>ST elevasi</i>.")
    await sp.click("#chat-form button[type=submit]")
    await expect(pkm.locator("#chat-log")).to_contain_text("Siang, saya lihat <i>ST elevasi</i>.")
    # The puskesmas's signaling socket drops: it rejoins with its token, and both keep the call they have.
    old_pc = await pkm.evaluate_handle("window.__room.pc")
    await pkm.click("#room-reconnect")
    await pkm.wait_for_function("() => window.__room.me.generation === 2", timeout=10000)
    assert await pkm.evaluate("(old) => window.__room.pc === old", old_pc)
    await expect(pkm.locator("#room-state")).to_have_attribute("data-state", "connected")
    deadline = time.monotonic() + 10
    assert await frames_growing(pkm, deadline) > 0
    assert await frames_growing(sp, deadline) > 0
    await pkm.click("#room-mute")
    assert await pkm.evaluate("window.__room.local.getAudioTracks().every((t) => !t.enabled)")
    # Audio only stops the camera without renegotiating; turning it off sends video again.
    await pkm.click("#room-audio-only")
    await pkm.wait_for_function("() => window.__room.local.getVideoTracks().length === 0")
    await pkm.click("#room-audio-only")
    await pkm.wait_for_function("() => window.__room.local.getVideoTracks().length === 1")
    assert await frames_growing(sp, time.monotonic() + 5) > 0
    # A second attachment, added during the session, reaches the specialist.
    await pkm.set_input_files("#case-files", files=[FilePayload(name="ekg-ulang.png", mimeType="image/png", buffer=PNG)])
    await pkm.click("#case-upload")
    await expect(sp.locator("#case-attachments a.attachment")).to_have_count(2)
    await screenshot(pkm, "puskesmas-room")
    await screenshot(sp, "specialist-room")

    # The specialist writes SOAP notes and a referral, and completes; the room closes on both sides.
    await sp.fill("#soap-subjective", "nyeri dada tipikal")
    await sp.fill("#soap-objective", "EKG: ST elevasi V1-V4")
    await sp.fill("#soap-assessment", "STEMI anterior")
    await sp.fill("#soap-plan", "aspirin 320 mg, rujuk untuk PCI")
    await fill_referral(sp, "rs-rsu-kota-tangsel", "I21.9", "STEMI anterior, perlu ICU")
    await sp.click("#complete")
    await expect(sp.locator("#case")).to_have_attribute("data-state", "completed")
    await expect(pkm.locator("#case")).to_have_attribute("data-state", "completed")
    await expect(pkm.locator("#room")).to_be_hidden()
    answer = pkm.locator("#answer")
    await expect(answer).to_contain_text("STEMI anterior")
    await expect(answer.locator(".decision")).to_have_attribute("data-decision", "refer")
    await expect(answer.locator(".decision")).to_contain_text(HOSPITAL)
    await screenshot(pkm, "puskesmas-answer")
    _, chat = await api.call("GET", f"/api/consults/{consult_id}/chat", await api.login("puskesmas"))
    assert [m["text"] for m in chat["messages"]] == ["Selamat siang dok, EKG terlampir.", "Siang, saya lihat <i>ST elevasi</i>."]


async def test_store_and_forward_answer_and_a_request_taken_by_another(pages: Pages, api: Api) -> None:
    pk = await api.login("puskesmas")
    consult_ids = []
    for _ in range(2):
        body = {"idempotency_key": uuid.uuid4().hex, "service": "tele_radiology", "specialty": "jantung", "urgency": "routine", "patient": PATIENT}
        status, created = await api.call("POST", "/api/consults", pk, json=body)
        assert status == 201, created
        consult_ids.append(created["consult"]["id"])
    taken, written = consult_ids
    [rival] = await add_users(api.dsn, "kardiolog", 1)

    pkm = await pages.login(await pages.context(CONSOLE), "puskesmas", "demo119", "/puskesmas.html")
    sp = await pages.login(await pages.context(CONSOLE), "specialist", "demo119", "/specialist.html")
    await ready(pkm)
    await ready(sp)
    await go_on_call(sp)
    await expect(sp.locator("#queue tr")).to_have_count(2)

    # Another specialist accepts first (with no live update here, the click meets the 409): this one is
    # told, and the request leaves the queue.
    # ... and no re-read still under way that would learn of the other specialist's accept.
    await sp.evaluate("async () => { window.__psc119.live.stop(); await window.__psc119.settled(); }")
    status, _ = await api.call("POST", f"/api/consults/{taken}/accept", await api.login(rival, "demo119x"))
    assert status == 200
    await sp.locator(f"#queue tr[data-consult-id='{taken}'] button.accept").click()
    await expect(sp.locator("#queue-message")).to_contain_text("spesialis lain")
    await expect(sp.locator("#queue tr")).to_have_count(1)

    # A written answer, no video: accept, write, complete.
    await sp.locator(f"#queue tr[data-consult-id='{written}'] button.accept").click()
    await expect(sp.locator("#case")).to_have_attribute("data-state", "accepted")
    await sp.fill("#soap-assessment", "Foto toraks: kardiomegali ringan")
    await sp.fill("#soap-plan", "Lanjutkan terapi, ekokardiografi elektif")
    await sp.check("input[name=decision][value=follow_up]")
    await sp.fill("#follow-in", "72")
    await screenshot(sp, "specialist-answer")
    await sp.click("#complete")
    await expect(sp.locator("#case")).to_have_attribute("data-state", "completed")

    # The puskesmas page (live) shows the answer of the consult it opens.
    await pkm.click(f"#consult-list button[data-consult-id='{written}']")
    await expect(pkm.locator("#case")).to_have_attribute("data-state", "completed")
    await expect(pkm.locator("#answer")).to_contain_text("kardiomegali ringan")
    await expect(pkm.locator("#answer .decision")).to_have_attribute("data-decision", "follow_up")
    await expect(pkm.locator("#answer .decision")).to_contain_text("72")
    await expect(pkm.locator("#join-room")).to_be_hidden()
    # English on request, from the same catalogue.
    await pkm.click("#lang-en")
    await expect(pkm.locator("#answer h3")).to_have_text("The specialist's answer")
    await screenshot(pkm, "puskesmas-store-and-forward")
