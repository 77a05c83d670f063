"""A 119 call end to end: intake, the nearest unit by ETA, its phone, every status, timeline and metrics."""

from __future__ import annotations

import datetime as dt
import json

import asyncpg

from dispatch.doctrine import needs_from_capabilities
from dispatch.eta import GeodesicEta
from dispatch.geo import Point
from dispatch.recommend import brute_force_recommend
from dispatch.units import UnitKind
from server.fleet import UNIT_COLUMNS, unit_from_row
from tests.conftest import Api
from tests.server.dispatch_support import CREW_PASSWORD, SCENE, Socket, call_body, crew_for


async def brute_force_nearest(con: asyncpg.Connection, capabilities: frozenset[str], k: int) -> list[str]:
    """The reference answer: every unit in the database ranked by geopy geodesic ETA."""
    units = [unit_from_row(r) for r in await con.fetch(f"SELECT {UNIT_COLUMNS} FROM units")]
    eta = GeodesicEta(1.4, {UnitKind.AMBULANCE: 30.0, UnitKind.MOTORBIKE: 40.0})
    picks = brute_force_recommend(units, Point(**SCENE), k, dt.datetime.now(dt.UTC), eta=eta,
                                  required_capabilities=capabilities)
    return [p.unit_id for p in picks]


async def test_call_to_dispatch_to_every_status_and_back(api: Api, con: asyncpg.Connection) -> None:
    operator = await api.login("operator")
    console = await Socket.open(api, "/ws/operator", operator, after=0)

    status, created = await api.call("POST", "/api/calls", operator, json=call_body())
    assert status == 201, created
    incident_id = created["incident"]["id"]
    assert created["incident"]["priority"] == "merah"  # chest pain's default in the triage table
    assert created["incident"]["kecamatan"] == "pondok-aren"
    needs = needs_from_capabilities(await con.fetchval("SELECT capabilities FROM triage_types WHERE code = 'chest_pain'"))
    assert needs.transport
    assert [r["unit_id"] for r in created["recommendations"]] == await brute_force_nearest(con, needs.care, 5)
    assert [r["unit_id"] for r in created["transport"]] == await brute_force_nearest(con, frozenset({"transport"}), 5)
    top = created["recommendations"][0]
    assert top["distance_m"] > 0 and top["eta_s"] > 0 and top["kind"] in ("motorbike", "ambulance")
    await console.event("call.received", incident_id=incident_id)
    assessed = await console.event("call.assessed", incident_id=incident_id)
    assert assessed["data"]["recommendations"][0]["unit_id"] == top["unit_id"]

    unit_id = top["unit_id"]
    crew = await api.login(await crew_for(con, unit_id), CREW_PASSWORD)
    phone = await Socket.open(api, "/ws/unit", crew, after=0)

    status, body = await api.call("POST", f"/api/incidents/{incident_id}/dispatch", operator, json={"unit_id": unit_id})
    assert status == 201, body
    assignment_id = body["assignment"]["id"]
    offer = await phone.event("unit.dispatched", assignment_id=assignment_id)
    assert offer["data"]["incident"]["address"] == "Jl. Ceger Raya 12"
    assert offer["data"]["incident"]["location"] == SCENE
    offered = await console.event("unit.dispatched", unit_id=unit_id)
    assert offered["data"]["unit"]["withdrawable"] is True  # the console may still withdraw it

    reply = await phone.request({"type": "ack", "assignment_id": assignment_id})
    assert reply["type"] == "ok" and reply["status"] == "en_route", reply
    assert reply["next_statuses"] == ["on_scene"]
    for step, reason in (("on_scene", None), ("transporting", None), ("at_hospital", None), ("available", None)):
        reply = await phone.request({"type": "status", "status": step, **({"reason": reason} if reason else {})})
        assert reply["type"] == "ok" and reply["status"] == step, reply
        if step == "on_scene":  # the phone learns which moves need a reason from the server, not from a copy
            assert reply["crew_moves"] == [
                {"status": "available", "reasons": ["no_patient", "refused_transport", "treated_on_scene"]},
                {"status": "transporting", "reasons": []},
            ]
        seen = await console.event("unit.status", unit_id=unit_id, status=step)
        assert seen["data"]["incident_id"] == incident_id
        assert seen["data"]["unit"]["withdrawable"] is False  # from the scene on, only the crew clears the unit

    status, closed = await api.call("POST", f"/api/incidents/{incident_id}/close", operator, json={"outcome": "emergency"})
    assert status == 200, closed

    status, timeline = await api.call("GET", f"/api/incidents/{incident_id}/timeline", operator)
    assert status == 200
    kinds = [(e["type"], e["status"]) for e in timeline["timeline"]]
    assert kinds == [
        ("call.received", None), ("call.assessed", None), ("unit.dispatched", None),
        ("unit.status", "en_route"), ("unit.status", "on_scene"), ("unit.status", "transporting"),
        ("unit.status", "at_hospital"), ("unit.status", "available"), ("incident.closed", None),
    ]
    stamps = [dt.datetime.fromisoformat(e["at"]) for e in timeline["timeline"]]
    assert stamps == sorted(stamps)
    assert timeline["timeline"][2]["by"] == "operator"
    assert timeline["timeline"][3]["by"] == f"crew-{unit_id}"

    status, incident = await api.call("GET", f"/api/incidents/{incident_id}", operator)
    row = incident["incident"]
    for key in ("first_dispatched_at", "first_acknowledged_at", "first_on_scene_at", "closed_at"):
        assert row[key] is not None, key
    assert incident["assignments"][0]["end_reason"] == "completed"

    status, metrics = await api.call("GET", "/api/metrics", operator)
    merah = metrics["by_priority"]["merah"]["intervals"]
    received = dt.datetime.fromisoformat(row["received_at"])
    dispatched = dt.datetime.fromisoformat(row["first_dispatched_at"])
    assert merah["call_to_dispatch_s"]["count"] == 1
    assert abs(merah["call_to_dispatch_s"]["p50_s"] - (dispatched - received).total_seconds()) < 1e-3
    assert merah["dispatch_to_on_scene_s"]["count"] == 1
    assert metrics["by_kecamatan"]["pondok-aren"]["incidents"] == 1
    assert metrics["all"]["nfpa1225"]["within_limit"] == 1

    status, eido = await api.call("GET", f"/api/incidents/{incident_id}/eido", operator)
    assert status == 200 and "incidentComponent" in eido
    await phone.close()
    await console.close()


async def test_phone_that_reconnects_gets_the_pending_dispatch_and_missed_events(api: Api, con: asyncpg.Connection) -> None:
    operator = await api.login("operator")
    status, created = await api.call("POST", "/api/calls", operator, json=call_body())
    unit_id = created["recommendations"][0]["unit_id"]
    crew = await api.login(await crew_for(con, unit_id), CREW_PASSWORD)
    phone = await Socket.open(api, "/ws/unit", crew)
    last_seen = phone.messages[0]["last_event_id"]
    await phone.close()
    status, body = await api.call("POST", f"/api/incidents/{created['incident']['id']}/dispatch", operator, json={"unit_id": unit_id})
    assert status == 201
    # Back online: the hello carries the dispatch still pending, and the event log replays what was missed.
    phone = await Socket.open(api, "/ws/unit", crew, after=last_seen)
    hello = phone.messages.pop(0)
    assert hello["dispatch"]["assignment"]["id"] == body["assignment"]["id"]
    assert hello["unit"]["status"] == "dispatched" and hello["next_statuses"] == ["en_route"]
    missed = await phone.event("unit.dispatched")
    assert missed["data"]["assignment_id"] == body["assignment"]["id"]
    await phone.close()


async def test_positions_update_the_unit_and_reach_operators_batched(api: Api, con: asyncpg.Connection) -> None:
    operator = await api.login("operator")
    console = await Socket.open(api, "/ws/operator", operator)
    crew = await api.login(await crew_for(con, "ns-05"), CREW_PASSWORD)
    phone = await Socket.open(api, "/ws/unit", crew)
    now = dt.datetime.now(dt.UTC)
    await phone.ws.send(json.dumps({"type": "position", "lat": -6.3, "lon": 106.70, "at": (now - dt.timedelta(seconds=2)).isoformat()}))
    await phone.ws.send(json.dumps({"type": "position", "lat": -6.31, "lon": 106.71, "accuracy": 8, "at": now.isoformat()}))
    batch = await console.wait_for(lambda m: m["type"] == "positions" and any(u["id"] == "ns-05" for u in m["units"]))
    fix = next(u for u in batch["units"] if u["id"] == "ns-05")
    assert (fix["lat"], fix["lon"]) == (-6.31, 106.71)  # latest wins
    row = await con.fetchrow("SELECT position_lat, position_lon FROM units WHERE id = 'ns-05'")
    assert (row["position_lat"], row["position_lon"]) == (-6.31, 106.71)
    # The live index moved too: the unit now ranks from its new fix.
    status, created = await api.call("POST", "/api/calls", operator, json=call_body(location={"lat": -6.31, "lon": 106.71}))
    assert created["recommendations"][0]["unit_id"] == "ns-05"
    assert created["recommendations"][0]["distance_m"] < 1.0
    await phone.close()
    await console.close()
