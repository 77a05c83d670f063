"""An unacknowledged dispatch is withdrawn and re-offered, even across a server restart."""

from __future__ import annotations

import asyncio

import asyncpg

from tests.conftest import app_config, start_api
from tests.server.dispatch_support import CREW_PASSWORD, Socket, call_body, crew_for


def quick_config(dsn: str):  # type: ignore[no-untyped-def]
    import dataclasses

    config = app_config(dsn)
    return dataclasses.replace(config, dispatch=dataclasses.replace(config.dispatch, ack_timeout_s=1.0, ack_sweep_s=0.1))


async def test_timeout_survives_a_restart_and_offers_the_next_unit(demo_dsn: str, con: asyncpg.Connection) -> None:
    first = await start_api(demo_dsn, quick_config(demo_dsn))
    operator = await first.login("operator")
    status, created = await first.call("POST", "/api/calls", operator, json=call_body())
    incident_id = created["incident"]["id"]
    ranked = [r["unit_id"] for r in created["recommendations"]]
    status, body = await first.call("POST", f"/api/incidents/{incident_id}/dispatch", operator, json={"unit_id": ranked[0]})
    assert status == 201
    # The server goes down before the deadline; the deadline is in the database, not in the process.
    await first.session.close()
    await first.server.close()
    await asyncio.sleep(1.3)
    assert await con.fetchval("SELECT ended_at FROM assignments WHERE id = $1", body["assignment"]["id"]) is None

    second = await start_api(demo_dsn, quick_config(demo_dsn))
    try:
        operator = await second.login("operator")
        console = await Socket.open(second, "/ws/operator", operator, after=0)
        withdrawn = await console.event("dispatch.withdrawn", unit_id=ranked[0])
        assert withdrawn["data"]["reason"] == "not_responding"
        alert = await console.event("alert", incident_id=incident_id)
        assert alert["data"]["alert"] == "ack_timeout" and alert["data"]["unit_id"] == ranked[0]
        # The alert names the unit offered next.
        assert alert["data"]["offered_unit_id"] == ranked[1]
        assert alert["data"]["offered_callsign"] == await con.fetchval("SELECT callsign FROM units WHERE id = $1", ranked[1])
        reoffer = await console.event("unit.dispatched", unit_id=ranked[1])
        assert reoffer["data"]["auto"] is True and reoffer["data"]["reoffer_of"] == body["assignment"]["id"]

        assert await con.fetchval("SELECT status FROM units WHERE id = $1", ranked[0]) == "available"
        assert await con.fetchval(
            "SELECT reason FROM unit_status_log WHERE unit_id = $1 ORDER BY id DESC LIMIT 1", ranked[0]
        ) == "not_responding"
        # The next unit's phone has the offer waiting, and acknowledging it in time keeps it.
        crew = await second.login(await crew_for(con, ranked[1]), CREW_PASSWORD)
        phone = await Socket.open(second, "/ws/unit", crew)
        hello = phone.messages.pop(0)
        assignment_id = hello["dispatch"]["assignment"]["id"]
        reply = await phone.request({"type": "ack", "assignment_id": assignment_id})
        assert reply["status"] == "en_route"
        await asyncio.sleep(1.5)
        assert await con.fetchval("SELECT end_reason FROM assignments WHERE id = $1", assignment_id) is None

        status, timeline = await second.call("GET", f"/api/incidents/{incident_id}/timeline", operator)
        types = [e["type"] for e in timeline["timeline"]]
        assert types == ["call.received", "call.assessed", "unit.dispatched", "dispatch.withdrawn", "unit.dispatched",
                         "alert", "unit.status"]
        await phone.close()
        await console.close()
    finally:
        await second.session.close()
        await second.server.close()


async def test_a_timeout_is_withdrawn_once_with_two_servers_sweeping(demo_dsn: str, con: asyncpg.Connection) -> None:
    servers = [await start_api(demo_dsn, quick_config(demo_dsn)) for _ in range(2)]
    try:
        operator = await servers[0].login("operator")
        status, created = await servers[0].call("POST", "/api/calls", operator, json=call_body())
        incident_id = created["incident"]["id"]
        unit_id = created["recommendations"][0]["unit_id"]
        await servers[0].call("POST", f"/api/incidents/{incident_id}/dispatch", operator, json={"unit_id": unit_id})
        # Past the first deadline (1 s), before the re-offered unit's (2 s).
        await asyncio.sleep(1.5)
        assert await con.fetchval("SELECT count(*) FROM events WHERE type = 'dispatch.withdrawn'") == 1
        assert await con.fetchval(
            "SELECT count(*) FROM assignments WHERE incident_id = $1::uuid AND ended_at IS NULL", incident_id
        ) == 1
    finally:
        for server in servers:
            await server.session.close()
            await server.server.close()
