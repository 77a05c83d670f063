"""Bad input at intake, dispatch and on the unit socket: a clear error naming the field, and nothing changed."""

from __future__ import annotations

import io
import json

import asyncpg
import pytest
import websockets

from tests.conftest import Api
from tests.server.dispatch_support import CREW_PASSWORD, Socket, call_body, crew_for


async def _counts(con: asyncpg.Connection) -> tuple[int, int, int]:
    return (
        await con.fetchval("SELECT count(*) FROM incidents"),
        await con.fetchval("SELECT count(*) FROM events"),
        await con.fetchval("SELECT count(*) FROM assignments"),
    )


@pytest.mark.parametrize("change,status,field", [
    ({"location": {"lat": 91, "lon": 106.7}}, 422, "location.lat"),
    ({"location": {"lat": -6.3, "lon": 181}}, 422, "location.lon"),
    ({"location": {"lat": "x", "lon": 106.7}}, 422, "location.lat"),
    ({"priority": "biru"}, 422, "priority"),
    ({"phone": "abc"}, 422, "phone"),
    ({"phone": None}, 422, "phone"),
    ({"call_type": "alien_abduction"}, 422, "call_type"),
    ({"kelurahan": "atlantis"}, 422, "kelurahan"),
    ({"idempotency_key": "short"}, 422, "idempotency_key"),
    ({"colour": "red"}, 422, "colour"),
])
async def test_bad_calls_are_refused_naming_the_field(api: Api, con: asyncpg.Connection, change: dict, status: int, field: str) -> None:
    token = await api.login("operator")
    before = await _counts(con)
    body = call_body(**change)
    body = {k: v for k, v in body.items() if v is not None}
    got, reply = await api.call("POST", "/api/calls", token, json=body)
    assert (got, reply["error"]["field"]) == (status, field), reply
    assert await _counts(con) == before


async def test_wrong_role_and_oversize_body_change_nothing(api: Api, con: asyncpg.Connection) -> None:
    before = await _counts(con)
    field = await api.login("field")
    assert (await api.call("POST", "/api/calls", field, json=call_body()))[0] == 403
    operator = await api.login("operator")
    big = io.BytesIO(json.dumps(call_body(notes="x" * 2_000_000)).encode())
    status, body = await api.call("POST", "/api/calls", operator, data=big, headers={"Content-Type": "application/json"})
    assert status == 413 and body["error"]["code"] == "too_large"
    assert await _counts(con) == before


async def test_dispatch_errors(api: Api, con: asyncpg.Connection) -> None:
    token = await api.login("operator")
    status, created = await api.call("POST", "/api/calls", token, json=call_body())
    incident_id = created["incident"]["id"]
    before = await _counts(con)
    assert (await api.call("POST", f"/api/incidents/{incident_id}/dispatch", token, json={"unit_id": "no-such"}))[0] == 404
    assert (await api.call("POST", "/api/incidents/00000000-0000-0000-0000-000000000000/dispatch", token, json={"unit_id": "ns-01"}))[0] == 404
    assert (await api.call("POST", "/api/incidents/not-a-uuid/dispatch", token, json={"unit_id": "ns-01"}))[0] == 404
    status, body = await api.call("POST", f"/api/incidents/{incident_id}/close", token, json={"outcome": "maybe"})
    assert (status, body["error"]["field"]) == (422, "outcome")
    status, body = await api.call("POST", f"/api/incidents/{incident_id}/close", token, json={"outcome": "duplicate"})
    assert (status, body["error"]["field"]) == (422, "duplicate_of")
    assert await _counts(con) == before
    status, _ = await api.call("POST", f"/api/incidents/{incident_id}/close", token, json={"outcome": "prank"})
    assert status == 200
    status, body = await api.call("POST", f"/api/incidents/{incident_id}/dispatch", token, json={"unit_id": "ns-01"})
    assert status == 409
    assert await con.fetchval("SELECT status FROM units WHERE id = 'ns-01'") == "available"


async def test_prank_caller_is_flagged_at_intake_but_never_blocked(api: Api) -> None:
    token = await api.login("operator")
    for _ in range(2):
        status, created = await api.call("POST", "/api/calls", token, json=call_body(phone="0877-1111-2222"))
        await api.call("POST", f"/api/incidents/{created['incident']['id']}/close", token, json={"outcome": "prank"})
    status, created = await api.call("POST", "/api/calls", token, json=call_body(phone="087711112222"))
    assert status == 201
    assert any(w["kind"] == "repeat_prank" and w["prank_count"] == 2 for w in created["warnings"])
    assert created["recommendations"]


async def test_nearby_open_incident_is_flagged_as_possible_duplicate_and_can_be_linked(api: Api) -> None:
    token = await api.login("operator")
    status, first = await api.call("POST", "/api/calls", token, json=call_body(phone="0811000001"))
    near = {"lat": -6.2697, "lon": 106.7071}  # about 25 m away
    status, second = await api.call("POST", "/api/calls", token, json=call_body(phone="0811000002", location=near))
    warning = next(w for w in second["warnings"] if w["kind"] == "duplicate")
    assert warning["incident_id"] == first["incident"]["id"] and warning["reason"] == "nearby"
    assert warning["distance_m"] < 40
    status, linked = await api.call("POST", f"/api/incidents/{second['incident']['id']}/link", token,
                                    json={"duplicate_of": first["incident"]["id"]})
    assert status == 200
    assert linked["incident"]["outcome"] == "duplicate" and linked["incident"]["duplicate_of"] == first["incident"]["id"]


async def test_same_caller_just_after_closing_is_flagged_with_the_closed_incident(api: Api) -> None:
    token = await api.login("operator")
    status, first = await api.call("POST", "/api/calls", token, json=call_body(phone="0811000077"))
    status, _ = await api.call("POST", f"/api/incidents/{first['incident']['id']}/close", token, json={"outcome": "information"})
    assert status == 200
    far = {"lat": -6.20, "lon": 106.80}  # another place: only the number matches
    status, second = await api.call("POST", "/api/calls", token, json=call_body(phone="0811-000-077", location=far))
    assert status == 201
    assert [(w["incident_id"], w["reason"]) for w in second["warnings"] if w["kind"] == "duplicate"] == [
        (first["incident"]["id"], "same_caller_closed")
    ]


async def test_malformed_and_illegal_unit_socket_messages_change_nothing(api: Api, con: asyncpg.Connection) -> None:
    crew = await api.login(await crew_for(con, "ns-07"), CREW_PASSWORD)
    phone = await Socket.open(api, "/ws/unit", crew)
    before = await _counts(con)
    cases = [
        ({"type": "status", "status": "flying"}, "status"),
        ({"type": "status", "status": "transporting"}, "status"),  # not legal from available
        ({"type": "status", "status": "available", "reason": "bored"}, "reason"),
        ({"type": "ack", "assignment_id": 999}, "assignment_id"),
        ({"type": "ack", "assignment_id": "x"}, "assignment_id"),
        ({"type": "position", "lat": 200, "lon": 106.7}, "lat"),
        ({"type": "position", "lat": -6.3, "lon": 106.7, "at": "yesterday"}, "at"),
        ({"type": "teleport"}, "type"),
        ({"type": "status", "status": "on_scene", "extra": 1}, "extra"),
    ]
    for message, field in cases:
        reply = await phone.request(message)
        assert reply["type"] == "error" and reply["error"]["field"] == field, (message, reply)
    await phone.ws.send("{broken")
    reply = await phone.next()
    assert reply["type"] == "error"
    assert await con.fetchval("SELECT status FROM units WHERE id = 'ns-07'") == "available"
    assert await _counts(con) == before
    # Still usable afterwards: a legal status goes through.
    reply = await phone.request({"type": "status", "status": "unavailable"})
    assert reply["type"] == "ok" and reply["status"] == "unavailable"
    await phone.close()


async def test_positions_beyond_the_rate_limit_are_refused(api: Api, con: asyncpg.Connection) -> None:
    crew = await api.login(await crew_for(con, "ns-08"), CREW_PASSWORD)
    phone = await Socket.open(api, "/ws/unit", crew)
    for n in range(30):
        await phone.ws.send(json.dumps({"type": "position", "lat": -6.3, "lon": 106.7, "ref": f"p{n}"}))
    refusal = await phone.wait_for(lambda m: m.get("type") == "error")
    assert refusal["error"]["code"] == "rate_limited" and "position" in refusal["error"]["message"]
    with pytest.raises(websockets.ConnectionClosed):
        await phone.next()
    assert phone.ws.close_code == 1008
