"""The console's map without a reachable tile server: it says so, brings a new incident into view, and the
incident marker leaves the callsigns of busy units readable."""

from __future__ import annotations

import re

from playwright.async_api import expect

from tests.e2e.conftest import CONSOLE, Pages
from tests.e2e.test_console_actions import take_call


async def test_map_without_tiles_says_so_zooms_to_a_new_call_and_keeps_labels(pages: Pages) -> None:
    console = await pages.login(await pages.context(CONSOLE), "operator", "demo119", "/operator.html")
    await expect(console.locator("body")).to_have_attribute("data-ready", "true")
    # No tile server is reachable from the test machine.
    await expect(console.locator("#map-notice")).to_be_visible()
    await expect(console.locator("#map-notice")).to_have_text("Peta tanpa latar: tidak ada koneksi ke server peta.")
    await expect(console.locator("#map")).to_have_class(re.compile(r"\bno-tiles\b"))
    before = await console.evaluate("window.__psc119.map.getZoom()")

    await take_call(console)
    marker = console.locator("#map .incident-marker")
    await expect(marker).to_have_count(1)
    # The map came to the incident: zoomed in, and (once its move has ended) the marker near the middle.
    assert before < 14
    await console.wait_for_function("""() => {
        const map = window.__psc119.map, marker = document.querySelector("#map .incident-marker");
        if (!marker || map.getZoom() < 14) return false;
        const m = marker.getBoundingClientRect(), area = document.querySelector("#map").getBoundingClientRect();
        return Math.abs(m.x + m.width / 2 - (area.x + area.width / 2)) < 30 && Math.abs(m.y + m.height / 2 - (area.y + area.height / 2)) < 30;
    }""")

    # A unit is sent: its callsign label is drawn above the incident marker, which no longer hides it.
    await console.keyboard.press("Alt+1")
    await expect(console.locator("#serving li[data-status='dispatched']")).to_have_count(1)
    unit_id = await console.locator("#serving li").first.get_attribute("data-unit-id")
    label = console.locator(f"#map .unit-marker[data-unit-id='{unit_id}'] .marker-label")
    await expect(label).to_be_visible()
    unit_pane = await console.locator(f"#map .unit-marker[data-unit-id='{unit_id}']").evaluate(
        "el => Number(el.closest('.leaflet-marker-icon').style.zIndex)")
    incident_pane = await marker.evaluate("el => Number(el.closest('.leaflet-marker-icon').style.zIndex)")
    assert unit_pane > incident_pane
