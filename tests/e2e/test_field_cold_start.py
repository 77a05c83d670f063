"""The installed field app started afresh without signal (a new window: no session): the phone as it was, and its
presses kept until the crew of that unit signs in again."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import asyncpg
import pytest
from playwright.async_api import Page, expect

from tests.conftest import Api
from tests.e2e.conftest import Pages, screenshot
from tests.e2e.weak_link_support import FIELD_UNIT, last_log_id, online, phone_through, proxy, reports
from tests.impair.tcp import LinkProxy
from tests.server.dispatch_support import CREW_PASSWORD, call_body, crew_for

__all__ = ["proxy"]  # the fixture, used by name
ADDRESS = "Jl. Basemen Rumah Sakit 3"


async def cold_start_offline(pages: Pages, api: Api, proxy: LinkProxy, link: str = "cut") -> Page:
    """The crew signed in and en route to a dispatch; then the link is cut, the phone's OS kills the app, and the
    crew opens it again: a new page of the same browser, its sessionStorage empty, with the press it makes there.
    ``link``: "cut" (refused at once) or "blackhole" (nothing answers: the page waits out the worker's four seconds)."""
    phone = await phone_through(pages, proxy)
    await phone.evaluate("navigator.serviceWorker.ready")
    operator = await api.login("operator")
    status, created = await api.call("POST", "/api/calls", operator, json=call_body(address=ADDRESS))
    status, sent = await api.call("POST", f"/api/incidents/{created['incident']['id']}/dispatch", operator, json={"unit_id": FIELD_UNIT})
    assert status == 201, sent
    await phone.click("#accept")
    await expect(phone.locator("#unit-status")).to_have_attribute("data-status", "en_route")
    await expect(phone.locator("#outbox")).to_be_hidden()

    proxy.cut() if link == "cut" else proxy.blackhole()
    await phone.close()
    cold = await pages.page(phone.context)
    await cold.goto(proxy.url + "/field.html")
    # Not the browser's error page, nor a login page it cannot load: the unit, its dispatch and the banner.
    await expect(cold.locator("#signed-out")).to_be_visible(timeout=30000)
    await expect(cold.locator("#signed-out")).to_contain_text("Belum masuk")
    await expect(cold.locator("#unit-status")).to_have_attribute("data-status", "en_route")
    await expect(cold.locator("#incident-details")).to_contain_text(ADDRESS)
    await expect(cold.locator("#incident-details")).to_contain_text("Pondok Aren")
    await cold.click("#status-buttons .status-button[data-status='on_scene']")
    await expect(cold.locator("#outbox")).to_have_attribute("data-count", "1")
    await expect(cold.locator("#unit-status")).to_have_attribute("data-status", "on_scene")
    await expect(cold.locator("#action-message")).to_contain_text("Belum masuk")
    assert await cold.evaluate("sessionStorage.getItem('psc119.token')") is None
    assert not [k for k in await cold.evaluate("Object.keys(localStorage)") if "token" in k]
    await screenshot(cold, "field-cold-start-offline")
    return cold


async def kept_press(page: Page) -> dict[str, Any]:
    [press] = await page.evaluate(f"JSON.parse(localStorage.getItem('psc119.outbox.{FIELD_UNIT}'))")
    assert isinstance(press, dict)
    return press


async def sign_in(page: Page, username: str, password: str) -> None:
    await page.fill("#username", username)
    await page.fill("#password", password)
    await page.press("#password", "Enter")
    await page.wait_for_url("**/field.html")
    await online(page)


@pytest.mark.parametrize("link", ["cut", "blackhole"])
async def test_a_cold_start_without_signal_shows_the_phone_and_its_presses_reach_the_server_after_signing_in(
    pages: Pages, api: Api, con: asyncpg.Connection, proxy: LinkProxy, link: str,
) -> None:
    cold = await cold_start_offline(pages, api, proxy, link)
    since = await last_log_id(con)
    press = await kept_press(cold)
    await asyncio.sleep(2)  # the report arrives well after the press: it must count at the press
    assert await reports(con, since) == []

    # Signal again: the page asks the crew to sign in; once they have, the press is delivered once, at its time.
    proxy.restore()
    await cold.wait_for_url("**/index.html?next=%2Ffield.html", timeout=15000)
    await sign_in(cold, "field", "demo119")
    await expect(cold.locator("#outbox")).to_be_hidden()
    await expect(cold.locator("#signed-out")).to_be_hidden()
    await expect(cold.locator("#unit-status")).to_have_attribute("data-status", "on_scene")
    assert await reports(con, since) == ["on_scene"]
    row = await con.fetchrow("SELECT at, received_at, report_id FROM unit_status_log WHERE unit_id = $1 AND id > $2", FIELD_UNIT, since)
    assert row["report_id"] == press["report_id"]
    assert row["at"] == dt.datetime.fromisoformat(press["reported_at"].replace("Z", "+00:00"))
    assert row["received_at"] - row["at"] > dt.timedelta(seconds=2)


async def test_another_account_signing_in_on_that_phone_does_not_send_the_units_kept_presses(
    pages: Pages, api: Api, con: asyncpg.Connection, proxy: LinkProxy,
) -> None:
    other_unit = await con.fetchval("SELECT id FROM units WHERE id <> $1 ORDER BY id LIMIT 1", FIELD_UNIT)
    other = await crew_for(con, other_unit)
    cold = await cold_start_offline(pages, api, proxy)
    since = await last_log_id(con)
    press = await kept_press(cold)

    # Another unit's crew signs in on this phone: NS-01's press is not sent as them, and is kept aside.
    proxy.restore()
    await cold.wait_for_url("**/index.html?next=%2Ffield.html", timeout=15000)
    await sign_in(cold, other, CREW_PASSWORD)
    await expect(cold.locator("#outbox")).to_be_hidden()
    await asyncio.sleep(2)
    assert await con.fetchval("SELECT count(*) FROM unit_status_log WHERE id > $1", since) == 0
    assert await kept_press(cold) == press

    # NS-01's crew signs in on it again: the press goes, once, as theirs.
    await cold.click("#logout")
    await cold.wait_for_url("**/index.html")
    await sign_in(cold, "field", "demo119")
    await expect(cold.locator("#outbox")).to_be_hidden()
    assert await reports(con, since) == ["on_scene"]
    assert await con.fetchval("SELECT report_id FROM unit_status_log WHERE id > $1", since) == press["report_id"]
