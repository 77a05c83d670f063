"""A field phone in Chromium whose every byte to the server crosses a `LinkProxy` the test can cut or blackhole."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from playwright.async_api import Page, expect

from tests.conftest import Api
from tests.e2e.conftest import PHONE, Pages
from tests.impair.tcp import LinkProxy

FIELD_UNIT = "ns-01"  # the demo account "field" is the crew of NS-01


@pytest.fixture
async def proxy(api: Api) -> AsyncIterator[LinkProxy]:
    async with LinkProxy(api.server.port) as link:  # type: ignore[arg-type]
        yield link


async def online(page: Page) -> None:
    await expect(page.locator("body")).to_have_attribute("data-connection", "online", timeout=20000)
    await expect(page.locator("#conn-banner")).to_be_hidden()


async def phone_through(pages: Pages, proxy: LinkProxy) -> Page:
    """The demo crew's page, signed in and online, loaded from the proxy's address (its only way to the server)."""
    page = await pages.page(await pages.context(PHONE))
    await page.goto(proxy.url + "/")
    await page.fill("#username", "field")
    await page.fill("#password", "demo119")
    await page.press("#password", "Enter")
    await page.wait_for_url("**/field.html")
    await online(page)
    return page


async def reports(con: asyncpg.Connection, since: object) -> list[str]:
    """The unit's status log since ``since``, oldest first: each report that counted, once."""
    rows = await con.fetch("SELECT status FROM unit_status_log WHERE unit_id = $1 AND id > $2 ORDER BY id", FIELD_UNIT, since)
    return [r["status"] for r in rows]


async def last_log_id(con: asyncpg.Connection) -> int:
    return int(await con.fetchval("SELECT coalesce(max(id), 0) FROM unit_status_log"))
