"""The console shows each incident's state as the server decided it, carried by the event: units that another
operator sends and moves take the incident on scene and onward, and a late second unit arriving on scene does
not pull an incident already at hospital back."""

from __future__ import annotations

from typing import Any

import asyncpg
from playwright.async_api import expect

from tests.conftest import Api
from tests.e2e.conftest import CONSOLE, Pages
from tests.server.dispatch_support import call_body


async def test_the_board_shows_the_incident_status_from_the_events(pages: Pages, api: Api, con: asyncpg.Connection) -> None:
    console = await pages.login(await pages.context(CONSOLE), "operator", "demo119", "/operator.html")
    await expect(console.locator("body")).to_have_attribute("data-ready", "true")
    other = await api.login("operator")  # another operator, at another console

    status, created = await api.call("POST", "/api/calls", other, json=call_body(call_type="stroke", address="Jl. Status 9"))
    assert status == 201, created
    incident_id = created["incident"]["id"]
    row = console.locator(f"#incident-board tr[data-incident-id='{incident_id}']")
    await expect(row).to_have_attribute("data-status", "open")
    marker = console.locator(f"#map .incident-marker[data-incident-id='{incident_id}']")
    first, second = created["recommendations"][0]["unit_id"], created["recommendations"][1]["unit_id"]

    async def send(unit_id: str, **extra: Any) -> None:
        status, body = await api.call("POST", f"/api/incidents/{incident_id}/dispatch", other, json={"unit_id": unit_id, **extra})
        assert status == 201, body

    async def radio(unit_id: str, target: str) -> None:
        status, body = await api.call("POST", f"/api/units/{unit_id}/status", other, json={"status": target})
        assert status == 200, body

    await send(first)
    await send(second, additional=True)
    await expect(row).to_have_attribute("data-status", "dispatched")
    await radio(first, "en_route")
    await radio(first, "on_scene")
    await expect(row).to_have_attribute("data-status", "on_scene")
    await expect(row.locator(".incident-status")).to_have_text("Di lokasi")
    await expect(marker).to_have_attribute("data-status", "on_scene")
    await radio(first, "transporting")
    await radio(first, "at_hospital")
    await expect(row).to_have_attribute("data-status", "at_hospital")

    # The second unit arrives on scene late: the server keeps the incident at the hospital, and so does the board.
    await radio(second, "en_route")
    await radio(second, "on_scene")
    await expect(row.locator(f".unit-tag[data-unit-id='{second}']")).to_have_attribute("data-status", "on_scene")
    assert await con.fetchval("SELECT status FROM incidents WHERE id = $1::uuid", incident_id) == "at_hospital"
    await expect(row).to_have_attribute("data-status", "at_hospital")
    await expect(marker).to_have_attribute("data-status", "at_hospital")
