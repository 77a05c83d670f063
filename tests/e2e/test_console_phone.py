"""The console shows whether each unit's phone is connected, and says to use the radio when it is not."""

from __future__ import annotations

import asyncpg
from playwright.async_api import expect

from tests.conftest import Api
from tests.e2e.conftest import CONSOLE, Pages, screenshot
from tests.server.dispatch_support import CREW_PASSWORD, Socket, call_body, crew_for
from tests.server.phone_support import pinging


async def test_the_console_shows_each_phone_and_says_to_use_the_radio_for_an_offline_one(
    pages: Pages, api: Api, con: asyncpg.Connection,
) -> None:
    operator = await api.login("operator")
    status, created = await api.call("POST", "/api/calls", operator, json=call_body(address="Jl. Radio 1"))
    connected, offline, later = (r["unit_id"] for r in created["recommendations"][:3])
    phone = await Socket.open(api, "/ws/unit", await api.login(await crew_for(con, connected), CREW_PASSWORD))
    async with pinging(phone, 1.0):
        console = await pages.login(await pages.context(CONSOLE), "operator", "demo119", "/operator.html")
        await expect(console.locator("body")).to_have_attribute("data-ready", "true")
        board = console.locator("#unit-board")
        await expect(board.locator(f"li[data-unit-id='{connected}'] .phone")).to_have_attribute("data-phone", "on")
        await expect(board.locator(f"li[data-unit-id='{offline}'] .phone")).to_have_attribute("data-phone", "off")

        # A phone connecting and leaving while the console watches: its badge follows.
        other = await Socket.open(api, "/ws/unit", await api.login(await crew_for(con, later), CREW_PASSWORD))
        await expect(board.locator(f"li[data-unit-id='{later}'] .phone")).to_have_attribute("data-phone", "on")
        await other.close()
        await expect(board.locator(f"li[data-unit-id='{later}'] .phone")).to_have_attribute("data-phone", "off")

        # The recommendation shows the same, and sending the unit whose phone is offline says to use the radio.
        await console.click(f"#incident-board tr[data-incident-id='{created['incident']['id']}']")
        rows = console.locator("#recommendations")
        await expect(rows.locator(f"tr[data-unit-id='{connected}'] .phone")).to_have_attribute("data-phone", "on")
        await expect(rows.locator(f"tr[data-unit-id='{offline}'] .phone")).to_have_attribute("data-phone", "off")
        await rows.locator(f"tr[data-unit-id='{offline}'] button.dispatch").click()
        await expect(console.locator("#dispatch-message")).to_contain_text("HP luring: gunakan radio")
        await screenshot(console, "console-phone-offline")
        await console.click("#lang-en")
        await expect(board.locator(f"li[data-unit-id='{offline}'] .phone")).to_have_attribute("aria-label", "phone offline")
    await phone.close()
