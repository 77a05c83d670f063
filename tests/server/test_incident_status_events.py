"""Every event that changes an incident carries the incident's state and assignment version as the core
decided them, and as they were stored: a client shows them and works nothing out."""

from __future__ import annotations

from typing import Any

import asyncpg

from tests.conftest import Api
from tests.server.dispatch_support import Socket, call_body


async def _stored(con: asyncpg.Connection, incident_id: str) -> dict[str, Any]:
    row = await con.fetchrow("SELECT status, assignment_version FROM incidents WHERE id = $1::uuid", incident_id)
    return {"incident_status": row["status"], "assignment_version": row["assignment_version"]}


def _state(event: dict[str, Any]) -> dict[str, Any]:
    return {k: event["data"][k] for k in ("incident_status", "assignment_version")}


async def test_each_change_announces_the_incident_state_it_leaves(api: Api, con: asyncpg.Connection) -> None:
    operator = await api.login("operator")
    console = await Socket.open(api, "/ws/operator", operator, after=0)
    status, created = await api.call("POST", "/api/calls", operator, json=call_body(call_type="stroke"))
    assert status == 201, created
    incident_id = created["incident"]["id"]
    first, carrier = created["recommendations"][0]["unit_id"], created["transport"][0]["unit_id"]
    if carrier == first:
        carrier = created["transport"][1]["unit_id"]

    async def step(event: str, **match: Any) -> dict[str, Any]:
        seen = _state(await console.event(event, incident_id=incident_id, **match))
        assert seen == await _stored(con, incident_id), event
        return seen

    async def radio(unit_id: str, body: dict[str, Any]) -> None:
        status, answer = await api.call("POST", f"/api/units/{unit_id}/status", operator, json=body)
        assert status == 200, answer

    # Sent, then withdrawn: the incident waits for a unit again (open), each time one version on.
    status, sent = await api.call("POST", f"/api/incidents/{incident_id}/dispatch", operator, json={"unit_id": first, "expected_version": 0})
    assert status == 201, sent
    assert await step("unit.dispatched", unit_id=first) == {"incident_status": "dispatched", "assignment_version": 1}
    status, _ = await api.call("POST", f"/api/incidents/{incident_id}/assignments/{sent['assignment']['id']}/cancel", operator)
    assert status == 200
    assert await step("dispatch.withdrawn", unit_id=first) == {"incident_status": "open", "assignment_version": 2}

    # Two units; the carrier reaches the scene first: the incident is on scene, and stays so when the other acknowledges.
    for unit_id, version in ((first, 2), (carrier, 3)):
        status, body = await api.call("POST", f"/api/incidents/{incident_id}/dispatch", operator,
                                      json={"unit_id": unit_id, "expected_version": version})
        assert status == 201, body
        await step("unit.dispatched", unit_id=unit_id)
    await radio(carrier, {"status": "en_route"})
    assert await step("unit.status", unit_id=carrier, status="en_route") == {"incident_status": "dispatched", "assignment_version": 4}
    await radio(carrier, {"status": "on_scene"})
    assert await step("unit.status", unit_id=carrier, status="on_scene") == {"incident_status": "on_scene", "assignment_version": 4}
    await radio(first, {"status": "en_route"})
    assert await step("unit.status", unit_id=first, status="en_route") == {"incident_status": "on_scene", "assignment_version": 4}

    # The first responder is withdrawn; the carrier takes the patient in and clears.
    status, record = await api.call("GET", f"/api/incidents/{incident_id}", operator)
    assert status == 200, record
    active = next(a for a in record["assignments"] if a["unit_id"] == first and a["ended_at"] is None)
    status, _ = await api.call("POST", f"/api/incidents/{incident_id}/assignments/{active['id']}/cancel", operator)
    assert status == 200
    assert await step("dispatch.withdrawn", unit_id=first) == {"incident_status": "on_scene", "assignment_version": 5}
    status, _ = await api.call("PATCH", f"/api/incidents/{incident_id}", operator, json={"notes": "pasien sadar"})
    assert status == 200
    assert await step("incident.updated") == {"incident_status": "on_scene", "assignment_version": 5}
    for target in ("transporting", "at_hospital", "available"):
        await radio(carrier, {"status": target})
        await step("unit.status", unit_id=carrier, status=target)
    assert await _stored(con, incident_id) == {"incident_status": "at_hospital", "assignment_version": 6}

    status, _ = await api.call("POST", f"/api/incidents/{incident_id}/close", operator, json={"outcome": "emergency"})
    assert status == 200
    assert await step("incident.closed") == {"incident_status": "closed", "assignment_version": 7}
    await console.close()


async def test_a_unit_is_dispatched_only_by_an_assignment(api: Api, con: asyncpg.Connection) -> None:
    operator = await api.login("operator")
    unit_id = await con.fetchval("SELECT id FROM units WHERE status = 'available' ORDER BY id LIMIT 1")
    status, body = await api.call("POST", f"/api/units/{unit_id}/status", operator, json={"status": "dispatched"})
    assert status == 409, body
    assert body["error"]["field"] == "status"
    assert await con.fetchval("SELECT status FROM units WHERE id = $1", unit_id) == "available"
    assert not await con.fetchval("SELECT count(*) FROM unit_status_log WHERE unit_id = $1 AND status = 'dispatched'", unit_id)
