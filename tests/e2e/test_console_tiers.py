"""The console's tiered recommendation: a list of units that can carry beside the first responders, and the
unit board telling a unit that never sent a fix from one whose fix is old."""

from __future__ import annotations

import datetime as dt

import asyncpg
from playwright.async_api import expect

from tests.conftest import Api
from tests.e2e.conftest import CONSOLE, Pages


async def test_transport_list_and_fix_flags(pages: Pages, api: Api, con: asyncpg.Connection) -> None:
    never, old = [r["id"] for r in await con.fetch("SELECT id FROM units ORDER BY id LIMIT 2")]
    await con.execute("UPDATE units SET position_lat = NULL, position_lon = NULL, position_at = NULL WHERE id = $1", never)
    await con.execute("UPDATE units SET position_at = $2 WHERE id = $1", old, dt.datetime.now(dt.UTC) - dt.timedelta(hours=3))
    console = await pages.login(await pages.context(CONSOLE), "operator", "demo119", "/operator.html")
    await expect(console.locator("body")).to_have_attribute("data-ready", "true")
    await expect(console.locator(f"#unit-board li[data-unit-id='{never}'] .no-fix")).to_have_count(1)
    await expect(console.locator(f"#unit-board li[data-unit-id='{old}'] .stale:not(.no-fix)")).to_have_count(1)
    await expect(console.locator("#unit-board .stale")).to_have_count(2)

    # A call that needs no transport shows no transport list.
    await console.fill("#f-phone", "0813-1111-2222")
    await console.select_option("#f-call-type", "general_sickness")
    await console.select_option("#f-kelurahan", "kel-serpong")
    await console.press("#f-phone", "Enter")
    await expect(console.locator("#recommendations tr[data-unit-id]").first).to_be_visible()
    await expect(console.locator("#transport-recommendations")).to_be_hidden()

    # A stroke needs transport: the list of carriers appears, and its own button dispatches one.
    await console.fill("#f-phone", "0813-3333-4444")
    await console.select_option("#f-call-type", "stroke")
    await console.select_option("#f-kelurahan", "kel-serpong")
    await console.press("#f-phone", "Enter")
    carrier = console.locator("#transport-recommendations tr[data-unit-id]").first
    await expect(carrier).to_be_visible()
    unit_id = await carrier.get_attribute("data-unit-id")
    await carrier.locator("button.dispatch").click()
    await expect(console.locator(f"#serving li[data-unit-id='{unit_id}']")).to_have_attribute("data-status", "dispatched")
    assert "transport" in await con.fetchval("SELECT capabilities FROM units WHERE id = $1", unit_id)
