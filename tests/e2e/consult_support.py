"""Helpers of the consult browser tests: is the page live, and is it decoding the other side's video."""

from __future__ import annotations

import time

from playwright.async_api import Page, expect

from tests.e2e.conftest import CONSOLE, Pages

# The most video frames decoded by any inbound video stream of the page's room connection.
FRAMES_DECODED = """async () => {
  const pc = window.__room && window.__room.pc;
  if (!pc || pc.connectionState !== "connected") return 0;
  let frames = 0;
  (await pc.getStats()).forEach((s) => { if (s.type === "inbound-rtp" && s.kind === "video") frames = Math.max(frames, s.framesDecoded || 0); });
  return frames;
}"""


async def ready(page: Page) -> None:
    await expect(page.locator("body")).to_have_attribute("data-ready", "true")
    await expect(page.locator("body")).to_have_attribute("data-connection", "online")


async def specialist_in_room(pages: Pages, consult_id: str, timeout: float = 5000) -> tuple[Page, str]:
    """The demo specialist's page, joined to the consult's room and connected, and its member id."""
    page = await pages.login(await pages.context(CONSOLE), "specialist", "demo119", "/specialist.html")
    await ready(page)
    await page.click(f"#my-consults button[data-consult-id='{consult_id}']")
    await page.click("#join-room")
    await expect(page.locator("#room-state")).to_have_attribute("data-state", "connected", timeout=timeout)
    return page, str(await page.evaluate("String(window.__room.me.user)"))


async def frames_growing(page: Page, deadline: float) -> int:
    """Wait until the page decodes remote video, then until the count grows; returns the latest count."""
    first = 0
    while time.monotonic() < deadline:
        first = await page.evaluate(FRAMES_DECODED)
        if first > 0:
            break
        await page.wait_for_timeout(200)
    assert first > 0, f"{page.url}: no video frame decoded"
    while time.monotonic() < deadline:
        later = await page.evaluate(FRAMES_DECODED)
        if later > first:
            return int(later)
        await page.wait_for_timeout(200)
    raise AssertionError(f"{page.url}: decoded frames stuck at {first}")


async def fill_referral(page: Page, hospital: str, icd10: str, reason: str, *, service: str = "", transport: bool = False) -> None:
    """On the specialist's page: decide "refer" and fill the referral (the hospitals are ranked once the decision is chosen)."""
    await page.check("input[name=decision][value=refer]")
    await expect(page.locator(f"#refer-hospital option[value='{hospital}']")).to_have_count(1)
    if service:
        await page.select_option("#refer-service", service)
    await page.select_option("#refer-hospital", hospital)
    await page.fill("#refer-icd10", icd10)
    await page.fill("#refer-reason", reason)
    if transport:
        await page.check("#refer-transport")
