"""A phone cut off for longer than the acknowledgement timeout learns, once back, which dispatch it missed."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import asyncpg
import pytest
from playwright.async_api import expect

from tests.conftest import Api, app_config, start_api
from tests.e2e.conftest import Pages, screenshot
from tests.e2e.weak_link_support import FIELD_UNIT, online, phone_through, proxy
from tests.impair.tcp import LinkProxy
from tests.server.dispatch_support import call_body

__all__ = ["proxy"]  # the fixture, used by name
ACK_TIMEOUT_S = 2.0


@pytest.fixture
async def api(demo_dsn: str) -> AsyncIterator[Api]:
    config = app_config(demo_dsn)
    config = dataclasses.replace(config, dispatch=dataclasses.replace(config.dispatch, ack_timeout_s=ACK_TIMEOUT_S, ack_sweep_s=0.2))
    client = await start_api(demo_dsn, config)
    yield client
    await client.session.close()
    await client.server.close()


async def test_a_dispatch_withdrawn_while_the_phone_was_cut_is_shown_with_where_it_went(
    pages: Pages, api: Api, con: asyncpg.Connection, proxy: LinkProxy,
) -> None:
    phone = await phone_through(pages, proxy)
    proxy.cut()
    await expect(phone.locator("body")).not_to_have_attribute("data-connection", "online")

    operator = await api.login("operator")
    status, created = await api.call("POST", "/api/calls", operator, json=call_body(address="Jl. Terlewat 9"))
    status, sent = await api.call("POST", f"/api/incidents/{created['incident']['id']}/dispatch", operator, json={"unit_id": FIELD_UNIT})
    assert status == 201, sent
    # Nobody answers: the server withdraws it and offers the incident to the next unit.
    for _ in range(100):
        if await con.fetchval("SELECT end_reason FROM assignments WHERE id = $1", sent["assignment"]["id"]) == "not_responding":
            break
        await asyncio.sleep(0.1)
    went_to = await con.fetchval(
        """SELECT u.callsign FROM assignments a JOIN units u ON u.id = a.unit_id
           WHERE a.incident_id = $1::uuid AND a.id > $2 ORDER BY a.id LIMIT 1""",
        created["incident"]["id"], sent["assignment"]["id"],
    )
    assert went_to is not None

    proxy.restore()
    await online(phone)
    missed = phone.locator("#missed")
    await expect(missed).to_be_visible()
    await expect(missed).to_contain_text("Jl. Terlewat 9")
    await expect(missed).to_contain_text("karena tidak dijawab")
    await expect(missed).to_contain_text(f"Dialihkan ke {went_to}")
    await expect(phone.locator("#offer")).to_be_hidden()
    await expect(phone.locator("#unit-status")).to_have_attribute("data-status", "available")
    await screenshot(phone, "field-missed-dispatch")
    # Read, and put away.
    await phone.click("#missed-ok")
    await expect(missed).to_be_hidden()
