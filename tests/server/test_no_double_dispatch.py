"""No double dispatch: a dispatch names the incident's assignment version the operator saw.

Two identical requests (an operator's double key press) can send one unit at most; a request made
from a list that has changed since is refused and changes nothing; a further unit must be asked for.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from tests.conftest import Api, start_api
from tests.server.dispatch_support import call_body


async def new_call(api: Api, operator: str) -> dict[str, Any]:
    status, created = await api.call("POST", "/api/calls", operator, json=call_body())
    assert status == 201, created
    return created


async def database_state(con: asyncpg.Connection, incident_id: str) -> tuple[Any, ...]:
    """What a refused dispatch must leave as it was."""
    assignments = await con.fetch("SELECT id, unit_id, ended_at FROM assignments WHERE incident_id = $1 ORDER BY id", incident_id)
    incident = await con.fetchrow("SELECT status, assignment_version FROM incidents WHERE id = $1", incident_id)
    units = await con.fetch("SELECT id, status FROM units ORDER BY id")
    events = await con.fetchval("SELECT count(*) FROM events")
    return [tuple(r) for r in assignments], tuple(incident), [tuple(r) for r in units], events


async def test_two_requests_with_the_version_seen_send_one_unit(api: Api, con: asyncpg.Connection) -> None:
    second = await start_api(api.dsn)  # the second press may reach another app instance on the database
    try:
        operator = await api.login("operator")
        created = await new_call(api, operator)
        incident_id, version = created["incident"]["id"], created["incident"]["assignment_version"]
        first, shifted = created["recommendations"][0]["unit_id"], created["recommendations"][1]["unit_id"]
        path = f"/api/incidents/{incident_id}/dispatch"
        results = await asyncio.gather(
            api.call("POST", path, operator, json={"unit_id": first, "expected_version": version}),
            second.call("POST", path, operator, json={"unit_id": shifted, "expected_version": version}),
        )
    finally:
        await second.session.close()
        await second.server.close()
    assert sorted(status for status, _ in results) == [201, 409], results
    refused = next(body for status, body in results if status == 409)
    assert refused["error"]["code"] == "stale" and refused["error"]["field"] == "expected_version", refused
    assert refused["assignment_version"] == version + 1 and len(refused["serving"]) == 1
    assert await con.fetchval("SELECT count(*) FROM assignments WHERE incident_id = $1", incident_id) == 1


async def test_a_stale_version_is_refused_with_the_fresh_state_and_changes_nothing(api: Api, con: asyncpg.Connection) -> None:
    operator = await api.login("operator")
    created = await new_call(api, operator)
    incident_id, seen = created["incident"]["id"], created["incident"]["assignment_version"]
    units = [r["unit_id"] for r in created["recommendations"]]
    path = f"/api/incidents/{incident_id}/dispatch"
    status, sent = await api.call("POST", path, operator, json={"unit_id": units[0], "expected_version": seen})
    assert status == 201 and sent["assignment_version"] == seen + 1, sent
    before = await database_state(con, incident_id)
    status, body = await api.call("POST", path, operator, json={"unit_id": units[1], "expected_version": seen, "additional": True})
    assert status == 409, body
    assert body["error"] == {"code": "stale", "field": "expected_version", "message": body["error"]["message"]}
    assert body["assignment_version"] == seen + 1 and body["serving"] == [units[0]]
    assert units[0] not in [r["unit_id"] for r in body["recommendations"]]
    assert await database_state(con, incident_id) == before
    # The version in the answer is the one to send: with it (and asked for as additional) the second unit goes.
    status, body = await api.call("POST", path, operator, json={"unit_id": units[1], "expected_version": seen + 1, "additional": True})
    assert status == 201, body


async def test_a_second_unit_needs_additional(api: Api, con: asyncpg.Connection) -> None:
    operator = await api.login("operator")
    created = await new_call(api, operator)
    incident_id = created["incident"]["id"]
    units = [r["unit_id"] for r in created["recommendations"]]
    path = f"/api/incidents/{incident_id}/dispatch"
    status, body = await api.call("POST", path, operator, json={"unit_id": units[0]})
    assert status == 201, body
    before = await database_state(con, incident_id)
    status, body = await api.call("POST", path, operator, json={"unit_id": units[1], "expected_version": body["assignment_version"]})
    assert status == 409, body
    assert body["error"]["code"] == "already_assigned" and body["error"]["field"] == "additional", body
    assert body["unit_id"] == units[0] and units[0] in body["error"]["message"]
    assert await database_state(con, incident_id) == before
    status, body = await api.call("POST", path, operator, json={"unit_id": units[1], "additional": True})
    assert status == 201, body
    serving = await con.fetchval("SELECT count(*) FROM assignments WHERE incident_id = $1 AND ended_at IS NULL", incident_id)
    assert serving == 2


async def test_every_change_of_the_incidents_units_moves_its_version(api: Api, con: asyncpg.Connection) -> None:
    operator = await api.login("operator")
    created = await new_call(api, operator)
    incident_id = created["incident"]["id"]
    unit_id = created["recommendations"][0]["unit_id"]
    assert created["incident"]["assignment_version"] == 0
    status, body = await api.call("GET", f"/api/incidents/{incident_id}/recommendations", operator)
    assert status == 200 and body["assignment_version"] == 0 and body["serving"] == [], body
    status, sent = await api.call("POST", f"/api/incidents/{incident_id}/dispatch", operator, json={"unit_id": unit_id, "expected_version": 0})
    assert status == 201 and sent["assignment_version"] == 1, sent
    status, body = await api.call("POST", f"/api/incidents/{incident_id}/assignments/{sent['assignment']['id']}/cancel", operator)
    assert status == 200, body
    status, body = await api.call("GET", f"/api/incidents/{incident_id}/recommendations", operator)
    assert body["assignment_version"] == 2 and body["serving"] == [], body
    events = await con.fetch(
        """SELECT type, payload->>'assignment_version' AS v FROM events
           WHERE payload->>'incident_id' = $1 AND type IN ('unit.dispatched', 'dispatch.withdrawn') ORDER BY id""",
        incident_id,
    )
    assert [(e["type"], e["v"]) for e in events] == [("unit.dispatched", "1"), ("dispatch.withdrawn", "2")]
    status, body = await api.call("POST", f"/api/incidents/{incident_id}/close", operator, json={"outcome": "information"})
    assert status == 200 and body["incident"]["assignment_version"] == 3, body


async def test_the_carrier_a_call_still_needs_is_a_new_role_not_a_second_unit(api: Api, con: asyncpg.Connection) -> None:
    operator = await api.login("operator")
    status, created = await api.call("POST", "/api/calls", operator, json=call_body(call_type="chest_pain"))
    assert status == 201, created
    assert "transport" in created["incident"]["needs"], created["incident"]
    incident_id = created["incident"]["id"]
    kinds = await con.fetch("SELECT id, 'transport' = ANY(capabilities) AS carries FROM units")
    carries = {r["id"]: r["carries"] for r in kinds}
    first = next(r["unit_id"] for r in created["recommendations"] if not carries[r["unit_id"]])
    others = [r["unit_id"] for r in created["recommendations"] if not carries[r["unit_id"]] and r["unit_id"] != first]
    carrier = created["transport"][0]["unit_id"]
    path = f"/api/incidents/{incident_id}/dispatch"
    status, body = await api.call("POST", path, operator, json={"unit_id": first})
    assert status == 201, body
    # A second first responder is a second unit for one role: it must be asked for.
    status, body = await api.call("POST", path, operator, json={"unit_id": others[0]})
    assert status == 409 and body["error"]["code"] == "already_assigned", body
    # The carrier the call still needs is not: it goes without a confirmation.
    status, body = await api.call("POST", path, operator, json={"unit_id": carrier})
    assert status == 201, body
    # Once a carrier serves, another carrier is a second unit again.
    status, body = await api.call("POST", path, operator, json={"unit_id": created["transport"][1]["unit_id"]})
    assert status == 409 and body["error"]["code"] == "already_assigned", body
