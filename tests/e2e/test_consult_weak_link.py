"""The specialist's page in Chromium and the puskesmas's aiortc kiosk over a weak link: relay-only through a real coturn
behind `tests.impair.udp.UdpRelay`. The call degrades (smaller picture or audio only, shown on the page) instead of
dying; when the link dies the page offers to continue in writing, and the consult is completed in writing with nothing
written before lost."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, expect

from signaling.bandwidth import AdaptPolicy, Mode
from signaling.link_quality import AdaptOptions
from signaling.media import SyntheticSource
from signaling.peer import ConsultPeer, PeerRefused
from tests.conftest import Api, app_config, start_api
from tests.e2e.conftest import Pages, screenshot
from tests.e2e.consult_support import specialist_in_room
from tests.impair.turn_link import TurnLink, start_turn_link
from tests.server.test_consults import accepted_consult
from tests.signaling.room_relay import run_peers, stop_peers

LOOPBACK = ["127.0.0.1"]
THREE_G = {"delay_s": 0.075, "loss": 0.01, "rate_bps": 300_000}  # two links: 150 ms, ~2 %, 300 kbit/s end to end

# Frames decoded and received audio packets of the page's connection, its candidate pair's types, and picture sizes.
MEDIA_STATS = """async () => {
  const pc = window.__room && window.__room.pc;
  const out = {frames: 0, audio: 0, width: 0, sent_width: 0, local: null, remote: null};
  if (!pc) return out;
  const stats = await pc.getStats();
  stats.forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "video") { out.frames = s.framesDecoded || 0; out.width = s.frameWidth || 0; }
    if (s.type === "inbound-rtp" && s.kind === "audio") out.audio = s.packetsReceived || 0;
    if (s.type === "outbound-rtp" && s.kind === "video") out.sent_width = s.frameWidth || 0;
    if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded") {
      out.local = stats.get(s.localCandidateId).candidateType;
      out.remote = stats.get(s.remoteCandidateId).candidateType;
    }
  });
  return out;
}"""


@pytest.fixture
async def turn(tmp_path: Path) -> AsyncIterator[TurnLink]:
    link = await start_turn_link(tmp_path, **THREE_G)
    yield link
    await link.close()


@pytest.fixture
async def api(demo_dsn: str, turn: TurnLink) -> AsyncIterator[Api]:
    """The app with TURN through the impaired link, and the pages told to connect relay-only."""
    config = dataclasses.replace(app_config(demo_dsn), ice=dataclasses.replace(turn.ice, relay_only=True))
    client = await start_api(demo_dsn, config)
    yield client
    await client.session.close()
    await client.server.close()


async def kiosk_and_page(pages: Pages, api: Api, **options: Any) -> tuple[str, ConsultPeer, list[Any], Page, str]:
    consult_id, pk, _ = await accepted_consult(api)
    status, join = await api.call("POST", f"/api/consults/{consult_id}/join", pk)
    assert status == 200 and join["ice_servers"], join
    kiosk = ConsultPeer(api.url(join["room_url"]).replace("http://", "ws://"), join["token"],
                        source=SyntheticSource(320, 240, busy=True), ice_host_addresses=LOOPBACK, relay_only=True, **options)
    tasks = await run_peers(kiosk)
    page, specialist = await specialist_in_room(pages, consult_id, timeout=30000)
    return consult_id, kiosk, tasks, page, specialist


def encoded(kiosk: ConsultPeer, specialist: str) -> int:
    """The video frames the kiosk has encoded for the page."""
    quality = kiosk._links[specialist].quality  # type: ignore[index]
    return 0 if quality is None or quality.encoder is None else quality.encoder.frames


async def rates(page: Page, kiosk: ConsultPeer, specialist: str, seconds: float) -> dict[str, float]:
    """Over ``seconds``: video frames/s and audio packets/s the page gets, video frames/s the kiosk gets, and video
    frames/s the kiosk encodes for the page."""
    before, kiosk_before, start = await page.evaluate(MEDIA_STATS), kiosk.stats.video_from(specialist), time.monotonic()
    sent_before = encoded(kiosk, specialist)
    await asyncio.sleep(seconds)
    after, elapsed = await page.evaluate(MEDIA_STATS), time.monotonic() - start
    return {
        "page_fps": (after["frames"] - before["frames"]) / elapsed,
        "page_audio": (after["audio"] - before["audio"]) / elapsed,
        "kiosk_fps": (kiosk.stats.video_from(specialist) - kiosk_before) / elapsed,
        "kiosk_sent_fps": (encoded(kiosk, specialist) - sent_before) / elapsed,
    }


async def test_a_page_and_a_kiosk_over_3g_degrade_instead_of_dying_and_the_page_shows_how(pages: Pages, api: Api) -> None:
    _, kiosk, tasks, page, specialist = await kiosk_and_page(pages, api)
    try:
        media = await page.evaluate(MEDIA_STATS)
        assert (media["local"], media["remote"]) == ("relay", "relay"), media
        await asyncio.sleep(12)  # the first seconds overfill the link, then both senders adapt
        kiosk_user = next(iter(kiosk.peer_connections))
        mode = page.locator("#room-mode")
        for _ in range(4):  # a window in which neither side changed its mode
            sending, receiving = await mode.get_attribute("data-sending"), await mode.get_attribute("data-receiving")
            measured = await rates(page, kiosk, specialist, 6)
            if (sending, receiving) == (await mode.get_attribute("data-sending"), await mode.get_attribute("data-receiving")):
                break
        media = await page.evaluate(MEDIA_STATS)
        # The kiosk's busy picture reaches the page: smaller and at least 10 frames/s, or audio only, which the page shows.
        assert receiving == kiosk.sending_modes.get(kiosk_user, Mode.VIDEO).value  # type: ignore[call-overload]
        assert measured["page_audio"] > 30, measured
        if receiving == "video":
            assert measured["page_fps"] >= 10 and 0 < media["width"] < 320, (measured, media)
        else:
            assert receiving == "audio_only" and measured["page_fps"] < 2, (receiving, measured)
        # The page's camera reaches the kiosk the same way, and the kiosk knows which.
        assert kiosk.receiving_modes.get(kiosk_user) is Mode(sending)  # type: ignore[call-overload]
        if sending == "video":
            assert measured["kiosk_fps"] >= 10 and 0 < media["sent_width"] < 640, (measured, media)
        else:
            assert sending == "audio_only" and measured["kiosk_fps"] < 2, (sending, measured)
        await screenshot(page, "specialist-room-over-3g")
    finally:
        await stop_peers([kiosk], tasks)


async def test_when_the_link_recovers_the_page_gets_video_again(pages: Pages, api: Api, turn: TurnLink) -> None:
    turn.relay.impair(rate_bps=90_000)  # less than the voice and the smallest video together
    policy = dataclasses.replace(AdaptPolicy(), probe_max=8.0)
    _, kiosk, tasks, page, specialist = await kiosk_and_page(pages, api, adapt=AdaptOptions(policy))
    try:
        mode = page.locator("#room-mode")
        # One look at what the page shows (its words come from the same state as its data-receiving): on this link the
        # kiosk's mode may move on between two looks, to writing and back, as its voice's reports come and go.
        await expect(mode).to_contain_text("Anda menerima: suara saja", timeout=30000)  # Indonesian by default
        turn.relay.impair(delay_s=0.0, loss=0.0, rate_bps=None)
        await expect(mode).to_have_attribute("data-receiving", "video", timeout=20000)
        # The link now carries every frame the kiosk encodes: the page decodes them all (the kiosk's CPU, shared with
        # the rest of a test run, decides how many that is; its picture is a busy one at 30 frames/s when it can).
        for _ in range(6):  # the first keyframe after the pause may take a retransmission or two
            measured = await rates(page, kiosk, specialist, 3)
            if measured["kiosk_sent_fps"] >= 5 and measured["page_fps"] >= 0.8 * measured["kiosk_sent_fps"]:
                break
        assert measured["kiosk_sent_fps"] >= 5 and measured["page_fps"] >= 0.8 * measured["kiosk_sent_fps"], measured
    finally:
        turn.relay.impair(loss=0.0)
        await stop_peers([kiosk], tasks)


async def test_a_video_consult_that_loses_its_link_is_completed_in_writing(pages: Pages, api: Api, turn: TurnLink) -> None:
    turn.relay.impair(delay_s=0.02, loss=0.0, rate_bps=None)
    consult_id, kiosk, tasks, page, specialist = await kiosk_and_page(pages, api)
    try:
        await kiosk.wait_until(lambda: kiosk.stats.video_from(specialist) > 10, 15)
        await page.fill("#chat-text", "Tolong arahkan kamera ke luka.")
        await page.press("#chat-text", "Enter")
        await kiosk.wait_until(lambda: len(kiosk.chats) == 1, 5)
        turn.relay.impair(loss=1.0)  # the media link dies; the server (chat, attachments, the answer) is still reachable
        await expect(page.locator("#room-writing")).to_be_visible(timeout=20000)
        await expect(page.locator("#room-mode")).to_have_attribute("data-sending", "text_only")
        await expect(page.locator("#room-mode")).to_have_attribute("data-receiving", "text_only")
        await page.click("#room-write")
        await expect(page.locator("body")).to_have_attribute("data-writing", "true")
        await page.fill("#chat-text", "Video terputus. Kirim foto luka lewat lampiran, kita lanjut tertulis.")
        await page.press("#chat-text", "Enter")
        await kiosk.wait_until(lambda: len(kiosk.chats) == 2, 5)
        await kiosk.send_chat("Baik dok, luka 4 cm, tepi rapi, tidak ada pus.")
        await expect(page.locator("#chat-log")).to_contain_text("tidak ada pus")
        await page.fill("#soap-subjective", "luka robek di lengan")
        await page.fill("#soap-assessment", "vulnus laceratum 4 cm")
        await page.fill("#soap-plan", "jahit situasi, toksoid tetanus")
        await page.click("#complete")
        await expect(page.locator("#case")).to_have_attribute("data-state", "completed")
        # Completing closes the room (4409): the kiosk is told the consult ended, as `psc119 peer` reports it,
        # and leaves (releasing its TURN allocations, which a dead link would hold up for their retries).
        turn.relay.impair(loss=0.0)
        with pytest.raises(PeerRefused) as ended:
            await asyncio.wait_for(asyncio.shield(tasks[0]), 10)
        assert (ended.value.code, ended.value.reason) == (4409, "completed")
        await screenshot(page, "specialist-completed-in-writing")
    finally:
        turn.relay.impair(loss=0.0)  # so the kiosk can release its TURN allocation as it leaves
        await stop_peers([kiosk], [task for task in tasks if not task.done()])
    _, chat = await api.call("GET", f"/api/consults/{consult_id}/chat", await api.login("puskesmas"))
    assert [m["text"] for m in chat["messages"]] == [
        "Tolong arahkan kamera ke luka.",
        "Video terputus. Kirim foto luka lewat lampiran, kita lanjut tertulis.",
        "Baik dok, luka 4 cm, tepi rapi, tidak ada pus.",
    ]
    status, consult = await api.call("GET", f"/api/consults/{consult_id}", await api.login("puskesmas"))
    assert status == 200 and consult["consult"]["outcome"]["soap"]["assessment"] == "vulnus laceratum 4 cm", consult
