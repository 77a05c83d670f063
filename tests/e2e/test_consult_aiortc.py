"""The specialist's browser page and the puskesmas's aiortc kiosk client (`signaling.peer.ConsultPeer`) hold a
consult: video frames both ways and chat, proof that browsers and the Python peer interoperate."""

from __future__ import annotations

import time

from playwright.async_api import expect

from signaling.media import SyntheticSource
from signaling.peer import ConsultPeer
from tests.conftest import Api
from tests.e2e.conftest import CONSOLE, Pages, screenshot
from tests.e2e.consult_support import frames_growing, ready
from tests.server.test_consults import accepted_consult
from tests.signaling.room_relay import run_peers, stop_peers

LOOPBACK = ["127.0.0.1"]  # aioice offers no loopback candidate by itself


async def test_specialist_browser_and_aiortc_kiosk_see_each_other(pages: Pages, api: Api) -> None:
    consult_id, pk, _ = await accepted_consult(api)
    status, join = await api.call("POST", f"/api/consults/{consult_id}/join", pk)
    assert status == 200 and join["ice_servers"] == [], join
    kiosk = ConsultPeer(api.url(join["room_url"]).replace("http://", "ws://"), join["token"],
                        source=SyntheticSource(320, 240), ice_host_addresses=LOOPBACK)
    tasks = await run_peers(kiosk)
    try:
        page = await pages.login(await pages.context(CONSOLE), "specialist", "demo119", "/specialist.html")
        await ready(page)
        await page.click(f"#my-consults button[data-consult-id='{consult_id}']")
        await expect(page.locator("#case")).to_have_attribute("data-state", "accepted")
        await page.click("#join-room")
        await expect(page.locator("#room-state")).to_have_attribute("data-state", "connected")
        # Towards an aiortc peer the browser is the polite offerer (aiortc cannot roll back).
        assert await page.evaluate("({polite: window.__room.peer.polite, offerer: window.__room.peer.offerer, kind: window.__room.peer.kind})") \
            == {"polite": True, "offerer": True, "kind": "aiortc"}
        assert await frames_growing(page, time.monotonic() + 10) > 0
        specialist_id = await page.evaluate("String(window.__room.me.user)")
        await kiosk.wait_until(lambda: kiosk.stats.video_from(specialist_id) > 10, 10)
        await kiosk.wait_until(lambda: kiosk.stats.audio_from(specialist_id) > 10, 5)
        await page.fill("#chat-text", "Terlihat jelas dari kios.")
        await page.press("#chat-text", "Enter")
        await kiosk.wait_until(lambda: len(kiosk.chats) == 1, 5)
        assert kiosk.chats[0].text == "Terlihat jelas dari kios."
        await kiosk.send_chat("Baik dok.")
        await expect(page.locator("#chat-log")).to_contain_text("Baik dok.")
        await screenshot(page, "specialist-room-with-aiortc-kiosk")
    finally:
        await stop_peers([kiosk], tasks)
