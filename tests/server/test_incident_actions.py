"""The operator's and admin's other actions: update, cancel, hospitals, lists, units, triage, auto-dispatch."""

from __future__ import annotations

import dataclasses

import asyncpg

from tests.conftest import Api, app_config, start_api
from tests.server.dispatch_support import CREW_PASSWORD, Socket, call_body, crew_for


async def test_a_call_without_location_is_recorded_and_recommended_once_located(api: Api) -> None:
    token = await api.login("operator")
    body = call_body()
    del body["location"], body["call_type"]
    status, created = await api.call("POST", "/api/calls", token, json=body)
    assert status == 201 and created["recommendations"] == []
    assert created["incident"]["priority"] == "merah"  # untriaged calls are treated as life-threatening
    incident_id = created["incident"]["id"]
    status, updated = await api.call("PATCH", f"/api/incidents/{incident_id}", token,
                                     json={"location": {"lat": -6.29557, "lon": 106.74663}, "call_type": "child_fever"})
    assert status == 200, updated
    assert updated["incident"]["priority"] == "hijau" and updated["incident"]["kecamatan"] == "ciputat-timur"
    assert len(updated["recommendations"]) == 5
    status, again = await api.call("PATCH", f"/api/incidents/{incident_id}", token, json={"priority": "kuning"})
    assert again["incident"]["priority"] == "kuning"
    status, bad = await api.call("PATCH", f"/api/incidents/{incident_id}", token, json={"status": "closed"})
    assert status == 422 and bad["error"]["field"] == "status"


async def test_cancel_returns_the_unit_and_reopens_the_incident(api: Api, con: asyncpg.Connection) -> None:
    token = await api.login("operator")
    status, created = await api.call("POST", "/api/calls", token, json=call_body())
    incident_id = created["incident"]["id"]
    unit_id = created["recommendations"][0]["unit_id"]
    crew = await api.login(await crew_for(con, unit_id), CREW_PASSWORD)
    phone = await Socket.open(api, "/ws/unit", crew)
    status, body = await api.call("POST", f"/api/incidents/{incident_id}/dispatch", token, json={"unit_id": unit_id})
    assignment_id = body["assignment"]["id"]
    status, result = await api.call("POST", f"/api/incidents/{incident_id}/assignments/{assignment_id}/cancel", token)
    assert status == 200 and result["status"] == "cancelled"
    withdrawn = await phone.event("dispatch.withdrawn", assignment_id=assignment_id)
    assert withdrawn["data"]["reason"] == "cancelled"
    assert await con.fetchval("SELECT status FROM units WHERE id = $1", unit_id) == "available"
    assert await con.fetchval("SELECT status FROM incidents WHERE id = $1::uuid", incident_id) == "open"
    status, again = await api.call("POST", f"/api/incidents/{incident_id}/assignments/{assignment_id}/cancel", token)
    assert status == 409
    await phone.close()


async def test_units_on_scene_cannot_be_cancelled_and_incidents_with_units_cannot_close(api: Api, con: asyncpg.Connection) -> None:
    token = await api.login("operator")
    status, created = await api.call("POST", "/api/calls", token, json=call_body())
    incident_id = created["incident"]["id"]
    unit_id = created["recommendations"][0]["unit_id"]
    status, body = await api.call("POST", f"/api/incidents/{incident_id}/dispatch", token, json={"unit_id": unit_id})
    for step in ("en_route", "on_scene"):
        status, _ = await api.call("POST", f"/api/units/{unit_id}/status", token, json={"status": step})
        assert status == 200
    status, refused = await api.call("POST", f"/api/incidents/{incident_id}/assignments/{body['assignment']['id']}/cancel", token)
    assert status == 409
    status, refused = await api.call("POST", f"/api/incidents/{incident_id}/close", token, json={"outcome": "emergency"})
    assert status == 409
    status, _ = await api.call("POST", f"/api/units/{unit_id}/status", token, json={"status": "available", "reason": "treated_on_scene"})
    assert status == 200
    assert await con.fetchval("SELECT end_reason FROM assignments WHERE id = $1", body["assignment"]["id"]) == "treated_on_scene"
    assert (await api.call("POST", f"/api/incidents/{incident_id}/close", token, json={"outcome": "emergency"}))[0] == 200


async def test_hospitals_by_eta_and_destination_reaches_the_crew(api: Api, con: asyncpg.Connection) -> None:
    token = await api.login("operator")
    status, created = await api.call("POST", "/api/calls", token, json=call_body())
    incident_id = created["incident"]["id"]
    status, body = await api.call("GET", f"/api/incidents/{incident_id}/hospitals", token)
    # Those that can treat the call (chest pain: a cath lab) first, each group by ETA.
    ranks = [(not h["capable"], h["eta_s"]) for h in body["hospitals"]]
    assert len(ranks) >= 6 and ranks == sorted(ranks)
    unit_id = created["recommendations"][0]["unit_id"]
    crew = await api.login(await crew_for(con, unit_id), CREW_PASSWORD)
    phone = await Socket.open(api, "/ws/unit", crew)
    await api.call("POST", f"/api/incidents/{incident_id}/dispatch", token, json={"unit_id": unit_id})
    nearest = body["hospitals"][0]["code"]
    status, _ = await api.call("POST", f"/api/incidents/{incident_id}/destination", token, json={"facility": nearest})
    assert status == 200
    seen = await phone.event("incident.destination", incident_id=incident_id)
    assert seen["data"]["destination"] == nearest
    status, bad = await api.call("POST", f"/api/incidents/{incident_id}/destination", token, json={"facility": "pkm-serpong-1"})
    assert status == 422 and bad["error"]["field"] == "facility"
    await phone.close()


async def test_incident_list_filters_and_orders_by_priority(api: Api, con: asyncpg.Connection) -> None:
    token = await api.login("operator")
    await api.call("POST", "/api/calls", token, json=call_body(call_type="child_fever", phone="0811111111"))
    await api.call("POST", "/api/calls", token, json=call_body(call_type="cardiac_arrest", phone="0822222222",
                                                                 location={"lat": -6.3405, "lon": 106.6947}))
    status, body = await api.call("GET", "/api/incidents", token)
    assert [i["priority"] for i in body["incidents"]] == ["merah", "hijau"]
    status, body = await api.call("GET", "/api/incidents?priority=hijau", token)
    assert [i["call_type"] for i in body["incidents"]] == ["child_fever"]
    status, body = await api.call("GET", "/api/incidents?kecamatan=serpong", token)
    assert [i["call_type"] for i in body["incidents"]] == ["cardiac_arrest"]
    status, body = await api.call("GET", "/api/incidents?status=closed", token)
    assert body["incidents"] == []
    status, bad = await api.call("GET", "/api/incidents?priority=biru", token)
    assert status == 422 and bad["error"]["field"] == "priority"
    reads = await con.fetchval("SELECT count(*) FROM audit_log WHERE action = 'incident.list' AND username = 'operator'")
    assert reads == 4
    # The board shows who serves each incident without one request per incident.
    status, body = await api.call("GET", "/api/incidents?kecamatan=serpong", token)
    incident = body["incidents"][0]
    assert incident["assignments"] == []
    await api.call("POST", f"/api/incidents/{incident['id']}/dispatch", token, json={"unit_id": "amb-psc-3"})
    status, body = await api.call("GET", "/api/incidents?kecamatan=serpong", token)
    assert [(a["unit_id"], a["callsign"]) for a in body["incidents"][0]["assignments"]] == [("amb-psc-3", "AMB-PSC-3")]


async def test_admin_registers_a_unit_that_is_recommended_once_on_duty(api: Api, con: asyncpg.Connection) -> None:
    admin = await api.login("admin")
    unit = {"id": "amb-test-1", "callsign": "AMB-TEST-1", "kind": "ambulance", "capabilities": ["bls", "transport", "als", "aed"],
            "base_lat": -6.30, "base_lon": 106.70, "crew": ["Dr. Test"]}
    status, body = await api.call("POST", "/api/units", admin, json=unit)
    assert status == 201 and body["unit"]["status"] == "off_duty"
    assert (await api.call("POST", "/api/units", admin, json=unit))[0] == 409
    status, bad = await api.call("POST", "/api/units", admin, json={**unit, "id": "x2", "callsign": "X2", "kind": "helicopter"})
    assert status == 422 and bad["error"]["field"] == "kind"
    status, bad = await api.call("POST", "/api/units", admin, json={**unit, "id": "x3", "callsign": "X3", "capabilities": ["flying"]})
    assert status == 422 and bad["error"]["field"].startswith("capabilities")
    operator = await api.login("operator")
    scene = {"lat": -6.30, "lon": 106.70}
    status, created = await api.call("POST", "/api/calls", operator, json=call_body(location=scene))
    assert "amb-test-1" not in [r["unit_id"] for r in created["recommendations"]]
    status, _ = await api.call("POST", "/api/units/amb-test-1/duty", admin, json={"on_duty": True})
    assert status == 200
    status, patched = await api.call("PATCH", "/api/units/amb-test-1", admin, json={"callsign": "AMB-TEST-ONE"})
    assert patched["unit"]["callsign"] == "AMB-TEST-ONE"
    status, fresh = await api.call("GET", f"/api/incidents/{created['incident']['id']}/recommendations", operator)
    top = fresh["recommendations"][0]
    # No fix yet: ranked from base, flagged as never fixed (not as an old fix).
    assert (top["unit_id"], top["callsign"], top["no_fix"], top["stale"]) == ("amb-test-1", "AMB-TEST-ONE", True, False)
    status, board = await api.call("GET", "/api/units", operator)
    assert len(board["units"]) == await con.fetchval("SELECT count(*) FROM units")


async def test_admin_edits_the_triage_table(api: Api) -> None:
    admin = await api.login("admin")
    body = {"label_id": "Gigitan anjing", "label_en": "Dog bite", "priority": "kuning", "capabilities": ["bls"]}
    status, saved = await api.call("PUT", "/api/triage/dog_bite", admin, json=body)
    assert status == 200 and saved["call_type"]["priority"] == "kuning"
    operator = await api.login("operator")
    status, created = await api.call("POST", "/api/calls", operator, json=call_body(call_type="dog_bite"))
    assert status == 201 and created["incident"]["priority"] == "kuning"
    status, bad = await api.call("PUT", "/api/triage/Dog-Bite", admin, json=body)
    assert status == 422 and bad["error"]["field"] == "code"
    status, bad = await api.call("PUT", "/api/triage/dog_bite", admin, json={**body, "priority": "ungu"})
    assert status == 422 and bad["error"]["field"] == "priority"


async def test_merah_calls_are_auto_dispatched_when_configured(demo_dsn: str, con: asyncpg.Connection) -> None:
    config = app_config(demo_dsn)
    config = dataclasses.replace(config, dispatch=dataclasses.replace(config.dispatch, auto_dispatch_merah=True))
    client = await start_api(demo_dsn, config)
    try:
        token = await client.login("operator")
        status, created = await client.call("POST", "/api/calls", token, json=call_body())
        auto = created["auto_dispatched"]
        assert auto is not None and auto["unit_id"] == created["recommendations"][0]["unit_id"]
        assert created["incident"]["status"] == "dispatched"
        status, calm = await client.call("POST", "/api/calls", token, json=call_body(call_type="child_fever", phone="0899"))
        assert calm["auto_dispatched"] is None
    finally:
        await client.session.close()
        await client.server.close()
