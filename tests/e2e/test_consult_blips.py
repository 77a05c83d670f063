"""A browser's call outlives its signaling: the specialist's page (Chromium) and the puskesmas's aiortc kiosk
hold a consult with both room sockets going through a link the test cuts for 10 s (RST, then refused). The
media runs peer to peer, so both sides keep decoding video throughout (no gap over 1 s), both rejoin when the
link is back, and the page keeps the very same RTCPeerConnection."""

from __future__ import annotations

import asyncio
import contextlib
import time
from urllib.parse import urlsplit

from playwright.async_api import Browser, Page, expect

from signaling.media import SyntheticSource
from signaling.peer import ConsultPeer
from tests.conftest import Api
from tests.e2e.conftest import Pages
from tests.e2e.consult_support import FRAMES_DECODED, specialist_in_room
from tests.impair.tcp import LinkProxy
from tests.server.blip_support import FrameClock
from tests.server.process_support import Remote
from tests.server.test_consults import accepted_consult
from tests.signaling.room_relay import run_peers, stop_peers

LOOPBACK = ["127.0.0.1"]
MAX_GAP_S = 1.0


async def watch_frames(page: Page, clock: FrameClock) -> None:
    """Note the time whenever the page's count of decoded video frames grows (sampled every 100 ms)."""
    seen = 0
    while True:
        frames = await page.evaluate(FRAMES_DECODED)
        if frames > seen:
            seen = frames
            clock.times.append(time.monotonic())
        await asyncio.sleep(0.1)


async def test_a_browser_and_an_aiortc_kiosk_keep_their_video_through_a_10_s_signaling_cut(browser: Browser, api: Api) -> None:
    consult_id, pk, _ = await accepted_consult(api)
    async with LinkProxy(urlsplit(api.url("/")).port or 0) as link:
        proxied = Remote(api.server, api.session, api.dsn, base=link.url)
        pages = Pages(browser, proxied)
        status, join = await api.call("POST", f"/api/consults/{consult_id}/join", pk)
        assert status == 200, join
        kiosk_clock, page_clock = FrameClock(), FrameClock()
        kiosk = ConsultPeer(f"ws://127.0.0.1:{link.port}{join['room_url']}", join["token"],
                            source=SyntheticSource(320, 240), ice_host_addresses=LOOPBACK, frame_sink=kiosk_clock.sink)
        tasks = await run_peers(kiosk)
        watcher: asyncio.Task[None] | None = None
        try:
            page, specialist_id = await specialist_in_room(pages, consult_id)
            await kiosk.wait_until(lambda: kiosk.stats.video_from(specialist_id) >= 10, 10)
            watcher = asyncio.create_task(watch_frames(page, page_clock))
            await kiosk.wait_until(lambda: len(page_clock.times) >= 3, 10)
            await page.evaluate("window.__pc0 = window.__room.pc")
            start = time.monotonic()
            link.cut()  # both room sockets reset, and no new one gets through
            await asyncio.sleep(10)
            link.restore()
            await kiosk.wait_until(lambda: kiosk.stats.joins == 2, 10)
            await expect(page.locator("#room-state")).to_have_attribute("data-state", "connected")
            async with asyncio.timeout(10):
                while await page.evaluate("window.__room.me.generation") != 2:  # the page rejoined too
                    await asyncio.sleep(0.1)
            await asyncio.sleep(1)
            end = time.monotonic()
            gaps = kiosk_clock.longest_gap(start, end), page_clock.longest_gap(start, end)
            assert max(gaps) < MAX_GAP_S, gaps
            assert await page.evaluate("window.__room.pc === window.__pc0")
            # Signaling works again: a chat crosses the new sockets.
            await page.fill("#chat-text", "Gambar tidak putus.")
            await page.press("#chat-text", "Enter")
            await kiosk.wait_until(lambda: len(kiosk.chats) == 1, 5)
        finally:
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            await stop_peers([kiosk], tasks)
            await pages.close()
        assert pages.errors == [], pages.errors


async def test_a_blackholed_browser_socket_is_noticed_within_10_s_on_both_ends(browser: Browser, api: Api) -> None:
    consult_id, pk, _ = await accepted_consult(api)
    async with LinkProxy(urlsplit(api.url("/")).port or 0) as link:
        pages = Pages(browser, Remote(api.server, api.session, api.dsn, base=link.url))
        status, join = await api.call("POST", f"/api/consults/{consult_id}/join", pk)
        assert status == 200, join
        kiosk = ConsultPeer(api.url(join["room_url"]).replace("http://", "ws://"), join["token"],  # direct
                            source=SyntheticSource(320, 240), ice_host_addresses=LOOPBACK)
        tasks = await run_peers(kiosk)
        try:
            page, specialist_id = await specialist_in_room(pages, consult_id)
            await page.evaluate("window.__ws0 = window.__room.ws")
            start = time.monotonic()
            link.blackhole()  # no FIN, no RST: only a heartbeat can tell
            async with asyncio.timeout(12):
                while await page.evaluate("window.__room.ws === window.__ws0"):  # the page gave the socket up
                    await asyncio.sleep(0.1)
            page_noticed = time.monotonic() - start
            await kiosk.wait_until(lambda: specialist_id in kiosk.reconnecting, 12)
            server_noticed = time.monotonic() - start
            assert page_noticed < 10 and server_noticed < 10, (page_noticed, server_noticed)
            link.restore()
            async with asyncio.timeout(15):
                while await page.evaluate("window.__room.me.generation") != 2:
                    await asyncio.sleep(0.1)
            await kiosk.wait_until(lambda: specialist_id not in kiosk.reconnecting and kiosk.connected_to(specialist_id), 5)
        finally:
            await stop_peers([kiosk], tasks)
            await pages.close()
        assert pages.errors == [], pages.errors


async def test_when_the_media_path_fails_the_browser_starts_a_fresh_connection_to_the_aiortc_kiosk(pages: Pages, api: Api) -> None:
    consult_id, pk, _ = await accepted_consult(api)
    status, join = await api.call("POST", f"/api/consults/{consult_id}/join", pk)
    assert status == 200, join
    kiosk = ConsultPeer(api.url(join["room_url"]).replace("http://", "ws://"), join["token"],
                        source=SyntheticSource(320, 240), ice_host_addresses=LOOPBACK)
    tasks = await run_peers(kiosk)
    try:
        page, specialist_id = await specialist_in_room(pages, consult_id)
        await kiosk.wait_until(lambda: kiosk.stats.video_from(specialist_id) >= 10, 10)
        await page.evaluate("window.__pc0 = window.__room.pc")
        # The kiosk's end of the media path dies (its signaling stays up): aiortc has no ICE restart, so the
        # browser, the pair's offerer, must start a new connection rather than restart ICE on the old one.
        await kiosk.peer_connections[specialist_id].close()
        seen = kiosk.stats.video_from(specialist_id)
        await kiosk.wait_until(lambda: kiosk.stats.video_from(specialist_id) >= seen + 20, 15)
        assert await page.evaluate("window.__room.pc !== window.__pc0")
        await expect(page.locator("#room-state")).to_have_attribute("data-state", "connected")
        assert kiosk.stats.joins == 1  # signaling was never dropped
    finally:
        await stop_peers([kiosk], tasks)
