"""The selected incident keeps up with what happens to it: an ack timeout names the unit offered next, the
recommendation drops that unit, the status line follows the crew, and a handled incident offers no dispatch."""

from __future__ import annotations

import asyncpg
from playwright.async_api import Browser, expect

from tests.conftest import Api
from tests.e2e.conftest import CONSOLE, Pages
from tests.e2e.test_console_actions import take_call
from tests.e2e.test_console_live import quick_api
from tests.server.dispatch_support import CREW_PASSWORD, Socket, crew_for

__all__ = ["quick_api"]  # the fixture, a 2 s acknowledgement deadline
# Records each tone the page starts, so a test can hear an alert.
RECORD_BEEPS = (
    "window.__beeps = []; const start = OscillatorNode.prototype.start;"
    " OscillatorNode.prototype.start = function (...a) { window.__beeps.push(this.frequency.value); return start.apply(this, a); };"
)


async def test_ack_timeout_reoffer_and_completion_show_in_the_panel(
    browser: Browser, quick_api: Api, con: asyncpg.Connection
) -> None:
    pages = Pages(browser, quick_api)
    try:
        context = await pages.context(CONSOLE)
        await context.add_init_script(RECORD_BEEPS)
        console = await pages.login(context, "operator", "demo119", "/operator.html")
        await expect(console.locator("body")).to_have_attribute("data-ready", "true")
        incident_id = await take_call(console)
        rows = console.locator("#recommendations tr[data-unit-id]")
        await expect(rows).to_have_count(5)
        first = await rows.first.get_attribute("data-unit-id")
        await console.keyboard.press("Alt+1")
        await expect(console.locator(f"#serving li[data-unit-id='{first}']")).to_have_count(1)

        # Nobody answers: the server withdraws it and offers the next unit; the alert names both.
        alert = console.locator(".alert.alert-ack_timeout")
        await expect(alert).to_have_count(1, timeout=10000)
        offered = await con.fetchrow(
            """SELECT u.id, u.callsign FROM assignments a JOIN units u ON u.id = a.unit_id
               WHERE a.incident_id = $1 AND a.ended_at IS NULL""", incident_id)
        first_callsign = await con.fetchval("SELECT callsign FROM units WHERE id = $1", first)
        text = f"{first_callsign} tidak menjawab penugasan; {offered['callsign']} ditawarkan sebagai gantinya."
        await expect(alert).to_have_text(text + "Buka insiden (Serpong)×")
        assert await console.evaluate("window.__beeps.length") > 0  # and it sounded
        await expect(console.locator("#dispatch-message.error")).to_have_text(text)
        # The offered unit is serving, and no longer recommended.
        await expect(console.locator(f"#serving li[data-unit-id='{offered['id']}']")).to_have_attribute("data-status", "dispatched")
        await expect(console.locator(f"#recommendations tr[data-unit-id='{offered['id']}']")).to_have_count(0)
        await expect(rows.first).to_be_visible()

        # The crew answers before its own deadline; the status line follows it.
        crew = await quick_api.login(await crew_for(con, offered["id"]), CREW_PASSWORD)
        phone = await Socket.open(quick_api, "/ws/unit", crew)
        hello = phone.messages.pop(0)
        assert (await phone.request({"type": "ack", "assignment_id": hello["dispatch"]["assignment"]["id"]}))["status"] == "en_route"
        assert (await phone.request({"type": "status", "status": "on_scene"}))["status"] == "on_scene"
        await expect(console.locator("#dispatch-message")).to_have_text(f"{offered['callsign']}: Di lokasi")
        reply = await phone.request({"type": "status", "status": "available", "reason": "treated_on_scene"})
        assert reply["status"] == "available"
        await phone.close()

        # Handled: the panel says so, offers no dispatch, and only closing remains.
        await expect(console.locator("#call-result")).to_have_attribute("data-state", "handled")
        await expect(console.locator("#serving")).to_have_text("Penanganan selesai: semua unit sudah lepas tugas. Tutup insiden.")
        await expect(console.locator("#dispatch-message")).to_have_text("Penanganan selesai: semua unit sudah lepas tugas. Tutup insiden.")
        await expect(console.locator("#recommendations button.dispatch")).to_have_count(0)
        await expect(console.locator("#close-incident")).to_be_visible()
        await console.keyboard.press("Alt+1")
        assert await con.fetchval("SELECT count(*) FROM assignments WHERE incident_id = $1 AND ended_at IS NULL", incident_id) == 0
    finally:
        await pages.close()
    assert pages.errors == [], pages.errors
