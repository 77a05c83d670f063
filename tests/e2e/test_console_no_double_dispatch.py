"""An operator's double key press never sends two units: Alt+1 pressed twice dispatches one unit,
whether the second press comes while the first is in flight or after the list has been redrawn; a
second unit for the incident goes only through a question whose default answer is Cancel."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import asyncpg
import pytest
from playwright.async_api import Page, Route, expect

from server.config import WebSettings
from tests.conftest import Api, app_config, start_api
from tests.e2e.conftest import Pages, screenshot

# A dispatcher's common screen.
WIDE = {"width": 1366, "height": 768}


@pytest.fixture
async def api(demo_dsn: str) -> AsyncIterator[Api]:
    """The app with markers only: at this size the map's first fit aborts loading tiles, and Leaflet's
    abort swaps in a data: image that the CSP refuses (a console-wide matter, not the dispatch keys')."""
    client = await start_api(demo_dsn, dataclasses.replace(app_config(demo_dsn), web=WebSettings(tile_url="")))
    yield client
    await client.session.close()
    await client.server.close()


async def take_call(pages: Pages, call_type: str = "chest_pain") -> Page:
    console = await pages.login(await pages.context(WIDE), "operator", "demo119", "/operator.html")
    await expect(console.locator("body")).to_have_attribute("data-ready", "true")
    await expect(console.locator("#f-phone")).to_be_focused()
    await console.keyboard.type("0812-3456-7890")
    await console.select_option("#f-call-type", call_type)
    await console.select_option("#f-kelurahan", "kel-parigi")
    await console.fill("#f-address", "Jl. Parigi Lama 12")
    await console.press("#f-address", "Enter")
    await expect(console.locator("#recommendations tr[data-unit-id]")).to_have_count(5)
    return console


async def assignments_of(con: asyncpg.Connection) -> list[str]:
    return [r["unit_id"] for r in await con.fetch("SELECT unit_id FROM assignments WHERE ended_at IS NULL ORDER BY id")]


@pytest.mark.parametrize("gap_s", [0.15, 1.0])
async def test_alt_1_twice_sends_one_unit(pages: Pages, api: Api, con: asyncpg.Connection, gap_s: float) -> None:
    console = await take_call(pages)
    top = await console.locator("#recommendations tr[data-unit-id]").first.get_attribute("data-unit-id")
    requests: list[str] = []
    console.on("request", lambda r: requests.append(r.url) if r.url.endswith("/dispatch") else None)

    await console.keyboard.press("Alt+1")
    await asyncio.sleep(gap_s)
    await console.keyboard.press("Alt+1")
    await expect(console.locator(f"#serving li[data-unit-id='{top}']")).to_have_count(1)
    await asyncio.sleep(0.5)  # time for a wrongly sent second request to land
    assert await assignments_of(con) == [top]
    assert len(requests) == 1, requests
    await expect(console.locator(f"#recommendations tr.sent[data-unit-id='{top}']")).to_have_count(1)
    # The list kept its order: the sent unit is still the first row, so Alt+1 still means that unit.
    assert await console.locator("#recommendations tr[data-unit-id]").first.get_attribute("data-unit-id") == top
    await screenshot(console, f"console-sent-once-{int(gap_s * 1000)}ms")


async def test_a_second_unit_is_sent_only_when_the_operator_confirms(pages: Pages, api: Api, con: asyncpg.Connection) -> None:
    # A call that needs no transport: every further unit is a second unit for the one role (a carrier
    # that a call still needs goes without asking, see tests/server/test_no_double_dispatch.py).
    console = await take_call(pages, "diabetic_emergency")
    rows = console.locator("#recommendations tr[data-unit-id]")
    top, second = [await rows.nth(i).get_attribute("data-unit-id") for i in (0, 1)]
    await console.keyboard.press("Alt+1")
    await expect(console.locator(f"#recommendations tr.sent[data-unit-id='{top}']")).to_have_count(1)

    # Alt+2 asks first; Enter (and a repeated Alt+2) answer Cancel.
    dialog = console.locator("#second-unit-dialog")
    await console.keyboard.press("Alt+2")
    await expect(dialog).to_be_visible()
    await expect(console.locator("#second-unit-cancel")).to_be_focused()
    await screenshot(console, "console-second-unit")
    await console.keyboard.press("Alt+2")
    await console.keyboard.press("Enter")
    await expect(dialog).to_be_hidden()
    await asyncio.sleep(0.5)
    assert await assignments_of(con) == [top]

    await console.keyboard.press("Alt+2")
    await expect(dialog).to_be_visible()
    await console.locator("#second-unit-send").click()
    await expect(dialog).to_be_hidden()
    await expect(console.locator(f"#recommendations tr.sent[data-unit-id='{second}']")).to_have_count(1)
    assert await assignments_of(con) == [top, second]


async def test_dispatch_keys_do_nothing_while_a_dispatch_is_in_flight(pages: Pages, api: Api, con: asyncpg.Connection) -> None:
    console = await take_call(pages)
    top = await console.locator("#recommendations tr[data-unit-id]").first.get_attribute("data-unit-id")
    held: list[Route] = []
    release = asyncio.Event()

    async def hold(route: Route) -> None:
        held.append(route)
        await release.wait()
        await route.continue_()

    await console.route("**/dispatch", hold)
    await console.keyboard.press("Alt+1")
    await expect(console.locator("#recommendations button.dispatch").first).to_be_disabled()
    for key in ("Alt+1", "Alt+2", "Alt+3"):
        await console.keyboard.press(key)
    await asyncio.sleep(0.3)
    assert len(held) == 1  # the keys pressed while the answer was awaited sent nothing
    release.set()
    await expect(console.locator(f"#recommendations tr.sent[data-unit-id='{top}']")).to_have_count(1)
    await expect(console.locator("#second-unit-dialog")).to_be_hidden()
    assert len(held) == 1 and await assignments_of(con) == [top]
