"""The console sends a unit the recommendation did not list, from the unit board: one lacking what the call needs
goes only with a reason asked for in a dialog (cancelling sends nothing), and the reason is on the timeline."""

from __future__ import annotations

import asyncpg
from playwright.async_api import expect

from tests.conftest import Api
from tests.e2e.conftest import CONSOLE, Pages
from tests.e2e.test_console_actions import take_call

REASON = "Unit terdekat; warga sudah melakukan RJP"


async def test_any_available_unit_with_a_reason_when_it_lacks_the_needs(pages: Pages, api: Api, con: asyncpg.Connection) -> None:
    # Two units far down the list that can do nothing the call needs.
    lacking, declined = [r["id"] for r in await con.fetch(
        "SELECT id FROM units WHERE status = 'available' ORDER BY id DESC LIMIT 2")]
    await con.execute("UPDATE units SET capabilities = '{rescue}' WHERE id = ANY($1::text[])", [lacking, declined])
    console = await pages.login(await pages.context(CONSOLE), "operator", "demo119", "/operator.html")
    await expect(console.locator("body")).to_have_attribute("data-ready", "true")
    board = console.locator("#unit-board")
    await expect(board.locator("button.send-unit")).to_have_count(0)  # no incident open: nothing to send to
    incident_id = await take_call(console)
    listed = await console.locator("#recommendations tr[data-unit-id]").evaluate_all("rows => rows.map((r) => r.dataset.unitId)")
    assert listed and lacking not in listed and declined not in listed
    dialog = console.locator("#override-dialog")

    # The operator cancels the reason: nothing is sent.
    await board.locator(f"li[data-unit-id='{declined}'] button.send-unit").click()
    await expect(dialog).to_be_visible()
    await expect(console.locator("#override-text")).to_contain_text("tidak memiliki BLS (bantuan hidup dasar)")
    await console.locator("#override-cancel").click()
    await expect(dialog).to_be_hidden()
    assert await con.fetchval("SELECT count(*) FROM assignments WHERE incident_id = $1::uuid", incident_id) == 0

    # With a reason (an empty one is not taken), it goes, in English this time.
    await console.click("#lang-en")
    await board.locator(f"li[data-unit-id='{lacking}'] button.send-unit").click()
    await expect(console.locator("#override-h")).to_have_text("Send a unit without the needed capabilities?")
    await expect(console.locator("#override-text")).to_contain_text("lacks BLS (basic life support)")
    await console.locator("#override-send").click()
    await expect(dialog).to_be_visible()
    await console.fill("#override-reason", REASON)
    await console.locator("#override-send").click()
    await expect(console.locator(f"#serving li[data-unit-id='{lacking}']")).to_have_attribute("data-status", "dispatched")
    override = await con.fetchval(
        """SELECT e.payload->'override' FROM events e WHERE e.type = 'unit.dispatched' AND e.payload->>'unit_id' = $1""", lacking)
    assert override == {"reason": REASON, "missing_capabilities": ["bls"]}

    # A capable unit the list did not show: sent as a second unit once the operator confirms.
    other = await con.fetchval(
        "SELECT id FROM units WHERE status = 'available' AND 'bls' = ANY(capabilities) AND NOT id = ANY($1::text[]) ORDER BY id DESC LIMIT 1",
        listed)
    await board.locator(f"li[data-unit-id='{other}'] button.send-unit").click()
    await expect(console.locator("#second-unit-dialog")).to_be_visible()
    await console.locator("#second-unit-send").click()
    await expect(console.locator(f"#serving li[data-unit-id='{other}']")).to_have_attribute("data-status", "dispatched")

    # The timeline says why the first was sent.
    await console.click("#show-timeline")
    entry = console.locator("#timeline li[data-event='unit.dispatched']", has=console.locator(".override"))
    await expect(entry).to_have_count(1)
    await expect(entry).to_contain_text(f"without BLS (basic life support), reason: {REASON}")
