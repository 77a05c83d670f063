"""Tiered response over the API: first responders and carriers, kind defaults, capability overrides."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import asyncpg

from dispatch.geo import Point, distance_m
from server import migrate
from tests.conftest import Api, app_config, start_api
from tests.server.dispatch_support import Socket, call_body


def near(lat: float, lon: float, metres_north: float) -> dict[str, float]:
    return {"lat": lat + metres_north / 111_000, "lon": lon}


async def test_a_chest_pain_call_beside_an_ambulance_gets_that_ambulance_first(api: Api, con: asyncpg.Connection) -> None:
    # The demo's puskesmas ambulances now carry an AED, as PSC ambulances do.
    amb = await con.fetchrow(
        "SELECT id, position_lat, position_lon FROM units WHERE id LIKE 'amb-pkm-%' AND status = 'available' ORDER BY id LIMIT 1")
    scene = near(amb["position_lat"], amb["position_lon"], 14)
    assert 10 < distance_m(Point(amb["position_lat"], amb["position_lon"]), Point(**scene)) < 20
    operator = await api.login("operator")
    status, created = await api.call("POST", "/api/calls", operator, json=call_body(location=scene, call_type="chest_pain"))
    assert status == 201, created
    assert created["incident"]["needs"] == ["aed", "bls", "transport"]
    assert created["recommendations"][0]["unit_id"] == amb["id"]
    assert created["recommendations"][0]["distance_m"] < 20
    # It can carry too, so it heads the transport tier as well; every carrier can carry.
    assert created["transport"][0]["unit_id"] == amb["id"]
    assert all("transport" in r["capabilities"] for r in created["transport"])
    assert all({"bls", "aed"} <= set(r["capabilities"]) for r in created["recommendations"])


async def test_units_get_their_kinds_defaults_and_impossible_capabilities_are_refused(api: Api, con: asyncpg.Connection) -> None:
    admin = await api.login("admin")
    base = {"base_lat": -6.30, "base_lon": 106.70}
    status, body = await api.call("POST", "/api/units", admin, json={"id": "amb-new", "callsign": "AMB-NEW", "kind": "ambulance", **base})
    assert status == 201 and body["unit"]["capabilities"] == ["aed", "bls", "transport"], body
    status, body = await api.call("POST", "/api/units", admin,
                                  json={"id": "mtr-new", "callsign": "MTR-NEW", "kind": "motorbike", "capabilities": [], **base})
    assert status == 201 and body["unit"]["capabilities"] == ["aed", "bls"], body
    assert await con.fetchval("SELECT capabilities FROM units WHERE id = 'mtr-new'") == ["aed", "bls"]

    before = await con.fetchval("SELECT count(*) FROM units")
    status, bad = await api.call("POST", "/api/units", admin,
                                 json={"id": "mtr-bad", "callsign": "MTR-BAD", "kind": "motorbike", "capabilities": ["bls", "transport"], **base})
    assert status == 422 and bad["error"]["field"] == "capabilities" and "transport" in bad["error"]["message"], bad
    assert await con.fetchval("SELECT count(*) FROM units") == before
    # A change of kind is checked against the capabilities the unit keeps.
    status, bad = await api.call("PATCH", "/api/units/amb-new", admin, json={"kind": "motorbike"})
    assert status == 422 and bad["error"]["field"] == "capabilities", bad
    status, bad = await api.call("PATCH", "/api/units/mtr-new", admin, json={"capabilities": ["neonatal"]})
    assert status == 422 and bad["error"]["field"] == "capabilities", bad
    assert await con.fetchval("SELECT (kind, capabilities)::text FROM units WHERE id = 'amb-new'") == "(ambulance,\"{aed,bls,transport}\")"
    status, ok = await api.call("PATCH", "/api/units/amb-new", admin, json={"kind": "motorbike", "capabilities": ["bls", "als"]})
    assert status == 200 and ok["unit"]["capabilities"] == ["als", "bls"], ok


async def _on_duty_unit(api: Api, admin: str, unit_id: str, kind: str, capabilities: list[str], where: dict[str, float]) -> None:
    status, body = await api.call("POST", "/api/units", admin, json={
        "id": unit_id, "callsign": unit_id.upper(), "kind": kind, "capabilities": capabilities,
        "base_lat": where["lat"], "base_lon": where["lon"]})
    assert status == 201, body
    assert (await api.call("POST", f"/api/units/{unit_id}/duty", admin, json={"on_duty": True}))[0] == 200


async def test_dispatching_a_unit_without_the_needed_capabilities_needs_an_override(api: Api, con: asyncpg.Connection) -> None:
    admin, operator = await api.login("admin"), await api.login("operator")
    scene = {"lat": -6.3000, "lon": 106.7000}
    await _on_duty_unit(api, admin, "amb-basic", "ambulance", ["bls"], scene)  # no AED and no stretcher
    status, created = await api.call("POST", "/api/calls", operator, json=call_body(location=scene, call_type="cardiac_arrest"))
    incident_id = created["incident"]["id"]
    assert "amb-basic" not in {r["unit_id"] for r in created["recommendations"] + created["transport"]}

    status, refused = await api.call("POST", f"/api/incidents/{incident_id}/dispatch", operator, json={"unit_id": "amb-basic"})
    assert status == 422, refused
    assert refused["error"]["field"] == "unit_id" and refused["missing_capabilities"] == ["aed"], refused
    assert await con.fetchval("SELECT status FROM units WHERE id = 'amb-basic'") == "available"
    assert await con.fetchval("SELECT count(*) FROM assignments WHERE incident_id = $1", created["incident"]["id"]) == 0
    status, bad = await api.call("POST", f"/api/incidents/{incident_id}/dispatch", operator, json={"unit_id": "amb-basic", "override_reason": ""})
    assert status == 422 and bad["error"]["field"] == "override_reason", bad

    reason = "the AED unit is stuck at the toll gate; crew does CPR"
    status, sent = await api.call("POST", f"/api/incidents/{incident_id}/dispatch", operator,
                                  json={"unit_id": "amb-basic", "override_reason": reason})
    assert status == 201, sent
    status, timeline = await api.call("GET", f"/api/incidents/{incident_id}/timeline", operator)
    [entry] = [e for e in timeline["timeline"] if e["type"] == "unit.dispatched"]
    assert entry["unit_id"] == "amb-basic" and entry["by"] == "operator"
    assert entry["data"]["override"] == {"reason": reason, "missing_capabilities": ["aed"]}
    audited = await con.fetchval("SELECT detail FROM audit_log WHERE action = 'unit.dispatch' ORDER BY id DESC LIMIT 1")
    assert audited["override"]["reason"] == reason

    # A capable unit needs no reason, and a carrier qualifies for a call that needs transport.
    await _on_duty_unit(api, admin, "amb-carry", "ambulance", ["transport"], scene)
    status, sent = await api.call(
        "POST", f"/api/incidents/{incident_id}/dispatch", operator, json={"unit_id": "amb-carry", "additional": True},
    )
    assert status == 201, sent


async def _untriaged_call_beside_a_stretcher(api: Api) -> tuple[str, dict[str, Any]]:
    """An untriaged call at the base of an on-duty ambulance that can only carry: the operator's token and the answer."""
    admin, operator = await api.login("admin"), await api.login("operator")
    scene = {"lat": -6.3000, "lon": 106.7000}
    await _on_duty_unit(api, admin, "amb-stretcher", "ambulance", ["transport"], scene)
    body = call_body(location=scene)
    del body["call_type"]
    status, created = await api.call("POST", "/api/calls", operator, json=body)
    assert status == 201 and created["incident"]["needs"] == ["bls"], created
    return operator, created


async def test_an_untriaged_call_needs_basic_life_support(api: Api, con: asyncpg.Connection) -> None:
    operator, created = await _untriaged_call_beside_a_stretcher(api)
    assert created["recommendations"] and all("bls" in r["capabilities"] for r in created["recommendations"])
    assert "amb-stretcher" not in {r["unit_id"] for r in created["recommendations"]}
    status, refused = await api.call("POST", f"/api/incidents/{created['incident']['id']}/dispatch", operator, json={"unit_id": "amb-stretcher"})
    assert status == 422 and refused["missing_capabilities"] == ["bls"], refused


async def test_a_deactivated_call_type_keeps_the_needs_of_open_incidents(api: Api, con: asyncpg.Connection) -> None:
    admin, operator = await api.login("admin"), await api.login("operator")
    status, created = await api.call("POST", "/api/calls", operator, json=call_body(call_type="drowning"))
    incident_id = created["incident"]["id"]
    row = await con.fetchrow("SELECT label_id, label_en, priority, capabilities FROM triage_types WHERE code = 'drowning'")
    status, _ = await api.call("PUT", "/api/triage/drowning", admin, json={**dict(row), "active": False})
    assert status == 200
    status, fresh = await api.call("GET", f"/api/incidents/{incident_id}/recommendations", operator)
    assert fresh["transport"] and all({"bls", "aed"} <= set(r["capabilities"]) for r in fresh["recommendations"]), fresh
    assert [r["unit_id"] for r in fresh["recommendations"]] == [r["unit_id"] for r in created["recommendations"]]
    status, updated = await api.call("PATCH", f"/api/incidents/{incident_id}", operator, json={"notes": "korban sudah diangkat"})
    assert status == 200 and updated["incident"]["needs"] == ["aed", "bls", "transport"], updated
    assert updated["transport"]
    # A new call type is the operator's decision: its needs replace the old ones.
    status, updated = await api.call("PATCH", f"/api/incidents/{incident_id}", operator, json={"call_type": "general_sickness"})
    assert status == 200 and updated["incident"]["needs"] == ["bls"] and updated["transport"] == [], updated


async def _auto_client(demo_dsn: str) -> Api:
    config = app_config(demo_dsn)
    return await start_api(demo_dsn, dataclasses.replace(config, dispatch=dataclasses.replace(config.dispatch, auto_dispatch_merah=True)))


async def test_auto_dispatch_sends_a_first_responder_and_a_carrier(demo_dsn: str, con: asyncpg.Connection) -> None:
    bike = await con.fetchrow(
        "SELECT id, position_lat, position_lon FROM units WHERE kind = 'motorbike' AND status = 'available' ORDER BY id LIMIT 1")
    client = await _auto_client(demo_dsn)
    try:
        token = await client.login("operator")
        scene = near(bike["position_lat"], bike["position_lon"], 5)
        status, created = await client.call("POST", "/api/calls", token, json=call_body(location=scene, call_type="chest_pain"))
        assert status == 201, created
        first, carrier = created["auto_dispatched"], created["auto_dispatched_transport"]
        assert first["unit_id"] == bike["id"] == created["recommendations"][0]["unit_id"]
        assert carrier is not None and carrier["unit_id"] == created["transport"][0]["unit_id"]
        assert await con.fetchval("SELECT 'transport' = ANY(capabilities) FROM units WHERE id = $1", carrier["unit_id"])
        serving = await con.fetch("SELECT unit_id FROM assignments WHERE incident_id = $1::uuid AND ended_at IS NULL", created["incident"]["id"])
        assert sorted(r["unit_id"] for r in serving) == sorted([bike["id"], carrier["unit_id"]])

        # A first responder that can carry is sent alone.
        amb = await con.fetchrow(
            "SELECT id, position_lat, position_lon FROM units WHERE id LIKE 'amb-pkm-%' AND status = 'available' ORDER BY id DESC LIMIT 1")
        beside = near(amb["position_lat"], amb["position_lon"], 5)
        status, alone = await client.call("POST", "/api/calls", token, json=call_body(location=beside, call_type="chest_pain", phone="0811"))
        assert alone["auto_dispatched"]["unit_id"] == amb["id"] and alone["auto_dispatched_transport"] is None, alone
    finally:
        await client.session.close()
        await client.server.close()


async def test_auto_dispatch_never_sends_a_transport_only_unit_to_an_untriaged_call(
    demo_dsn: str, con: asyncpg.Connection
) -> None:
    client = await _auto_client(demo_dsn)
    try:
        _, created = await _untriaged_call_beside_a_stretcher(client)
        assert created["incident"]["priority"] == "merah", created
        sent = created["auto_dispatched"]
        assert sent is not None and sent["unit_id"] != "amb-stretcher"
        assert "bls" in await con.fetchval("SELECT capabilities FROM units WHERE id = $1", sent["unit_id"])
        assert created["auto_dispatched_transport"] is None
    finally:
        await client.session.close()
        await client.server.close()


async def test_never_fixed_and_stale_are_different_flags(api: Api, con: asyncpg.Connection) -> None:
    old = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    fresh = dt.datetime.now(dt.UTC)
    ids = [r["id"] for r in await con.fetch("SELECT id FROM units ORDER BY id LIMIT 3")]
    await con.execute("UPDATE units SET position_lat = base_lat, position_lon = base_lon, position_at = $2 WHERE id = $1", ids[0], old)
    await con.execute("UPDATE units SET position_lat = base_lat, position_lon = base_lon, position_at = $2 WHERE id = $1", ids[1], fresh)
    await con.execute("UPDATE units SET position_lat = NULL, position_lon = NULL, position_at = NULL WHERE id = $1", ids[2])
    status, board = await api.call("GET", "/api/units", await api.login("operator"))
    flags: dict[str, Any] = {u["id"]: (u["no_fix"], u["stale"]) for u in board["units"]}
    assert [flags[i] for i in ids] == [(False, True), (False, False), (True, False)]


async def test_the_upgrade_keeps_what_open_incidents_need_and_gives_bare_units_their_defaults(bare_dsn: str) -> None:
    con = await asyncpg.connect(bare_dsn)
    try:
        *before, tiered = [m for m in migrate.available() if m.version <= 12]
        assert tiered.name == "0012_tiered_response.sql"
        for migration in before:
            await con.execute(migration.sql)
        await con.executemany(
            "INSERT INTO triage_types (code, label_id, label_en, priority, capabilities, active) VALUES ($1, $1, $1, 'merah', $2, $3)",
            [("chest_pain", ["aed", "bls"], True), ("drowning", ["aed", "bls", "rescue"], True), ("gone", ["als"], False)],
        )
        await con.executemany(
            """INSERT INTO incidents (id, idempotency_key, request_digest, caller_phone, priority, call_type)
               VALUES (gen_random_uuid(), $1, '', '0811', 'merah', $2)""",
            [("k-chest", "chest_pain"), ("k-gone", "gone"), ("k-none", None)],
        )
        await con.executemany(
            "INSERT INTO units (id, callsign, kind, capabilities, base_lat, base_lon) VALUES ($1, $1, $2, $3, -6.3, 106.7)",
            [("a", "ambulance", []), ("m", "motorbike", []), ("b", "ambulance", ["bls"])],
        )
        await con.execute(tiered.sql)
        triage = dict(await con.fetch("SELECT code, capabilities FROM triage_types"))
        # A row as first seeded gains transport; one an admin edited stays as it is.
        assert triage == {"chest_pain": ["aed", "bls", "transport"], "drowning": ["aed", "bls", "rescue"], "gone": ["als"]}
        needs = dict(await con.fetch("SELECT idempotency_key, needs FROM incidents"))
        assert needs == {"k-chest": ["aed", "bls", "transport"], "k-gone": ["als"], "k-none": ["bls"]}
        units = dict(await con.fetch("SELECT id, capabilities FROM units"))
        assert units == {"a": ["aed", "bls", "transport"], "m": ["aed", "bls"], "b": ["bls"]}
    finally:
        await con.close()


async def test_a_carrier_that_does_not_answer_is_replaced_by_a_carrier(demo_dsn: str, con: asyncpg.Connection) -> None:
    bike = await con.fetchrow(
        "SELECT id, position_lat, position_lon FROM units WHERE kind = 'motorbike' AND status = 'available' ORDER BY id LIMIT 1")
    config = app_config(demo_dsn)
    client = await start_api(demo_dsn, dataclasses.replace(config, dispatch=dataclasses.replace(config.dispatch, ack_timeout_s=2.0, ack_sweep_s=0.1)))
    try:
        operator = await client.login("operator")
        status, created = await client.call("POST", "/api/calls", operator,
                                            json=call_body(location=near(bike["position_lat"], bike["position_lon"], 5)))
        incident_id = created["incident"]["id"]
        assert created["recommendations"][0]["unit_id"] == bike["id"]
        carrier, spare = (r["unit_id"] for r in created["transport"][:2])
        for unit_id in (bike["id"], carrier):
            assert (await client.call("POST", f"/api/incidents/{incident_id}/dispatch", operator, json={"unit_id": unit_id}))[0] == 201
        # The motorbike team answers by radio; the ambulance never does.
        status, body = await client.call("POST", f"/api/units/{bike['id']}/status", operator, json={"status": "en_route"})
        assert status == 200, body
        console = await Socket.open(client, "/ws/operator", operator, after=0)
        await console.event("dispatch.withdrawn", unit_id=carrier)
        reoffer = await console.event("unit.dispatched", incident_id=incident_id, auto=True)
        assert reoffer["data"]["unit_id"] == spare
        await console.close()
    finally:
        await client.session.close()
        await client.server.close()
