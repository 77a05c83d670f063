"""The crew's destination and handover: a destination report resent after its reply was lost counts once (its report
id), so it cannot undo a choice made since; a unit no longer on the incident can neither choose nor hand over, while its
late vitals still count."""

from __future__ import annotations

import uuid

import asyncpg

from tests.conftest import Api
from tests.server.dispatch_support import Socket
from tests.server.notice_support import HOSPITAL, OTHER, THIRD, hospital_account, notices, served_incident


def key() -> str:
    return uuid.uuid4().hex


async def _state(con: asyncpg.Connection, incident_id: str) -> tuple[object, list[tuple[str, str]], int]:
    """The destination, the notices (hospital, status) and the count of destination events: what a report may change."""
    incident = uuid.UUID(incident_id)
    return (await con.fetchval("SELECT destination FROM incidents WHERE id = $1", incident),
            [tuple(r) for r in await con.fetch("SELECT facility_code, status FROM prearrival_notices WHERE incident_id = $1 ORDER BY id", incident)],
            await con.fetchval("SELECT count(*) FROM events WHERE type = 'incident.destination' AND payload->>'incident_id' = $1", incident_id))


async def test_a_resent_destination_report_changes_nothing_after_the_operator_chose_another(api: Api, con: asyncpg.Connection) -> None:
    served = await served_incident(api, con)
    desk = await Socket.open(api, "/ws/events", await hospital_account(api, con, OTHER))
    report = {"type": "destination", "incident_id": served.incident_id, "facility": HOSPITAL, "report_id": key()}
    first = await served.phone.request(report)
    assert first["type"] == "ok" and first["destination"] == HOSPITAL and first["duplicate"] is False, first
    # The reply was lost; the operator meanwhile sends the patient to another hospital, which is notified.
    status, body = await api.call("POST", f"/api/incidents/{served.incident_id}/destination", served.operator, json={"facility": OTHER})
    assert status == 200, body
    await desk.event("notice.sent", incident_id=served.incident_id)
    before = await _state(con, served.incident_id)
    assert before[0] == OTHER and before[1] == [(HOSPITAL, "withdrawn"), (OTHER, "sent")]

    again = await served.phone.request(report)
    assert again["type"] == "ok" and again["duplicate"] is True and again["destination"] == OTHER, again
    assert await _state(con, served.incident_id) == before
    [notice] = await notices(api, await hospital_account(api, con, OTHER), served.incident_id)
    assert notice["status"] == "sent"

    # A report id is the phone's own: the same one for another incident is refused, naming it, and changes nothing.
    other = await served_incident(api, con, phone="0812-9999-4444", location={"lat": -6.30, "lon": 106.66})
    elsewhere = {**report, "incident_id": other.incident_id, "facility": THIRD}
    other_before = await _state(con, other.incident_id)
    refused = await served.phone.request(elsewhere)
    assert refused["type"] == "error" and refused["error"]["field"] in {"report_id", "incident_id"}, refused
    assert await _state(con, other.incident_id) == other_before
    # A missing report id is refused too: without it a resend could not be recognised.
    missing = await served.phone.request({"type": "destination", "incident_id": served.incident_id, "facility": THIRD})
    assert missing["type"] == "error" and missing["error"]["field"] == "report_id", missing
    assert await _state(con, served.incident_id) == before


async def test_a_withdrawn_unit_can_neither_choose_the_destination_nor_hand_over_but_its_vitals_count(api: Api, con: asyncpg.Connection) -> None:
    served = await served_incident(api, con)
    status, _ = await api.call("POST", f"/api/incidents/{served.incident_id}/destination", served.operator, json={"facility": HOSPITAL})
    assert status == 200
    [notice] = await notices(api, served.crew, served.incident_id)
    status, body = await api.call("POST", f"/api/incidents/{served.incident_id}/assignments/{served.assignment_id}/cancel", served.operator)
    assert status == 200, body
    await served.phone.event("dispatch.withdrawn", assignment_id=served.assignment_id)
    before = await _state(con, served.incident_id)

    chosen = await served.phone.request({"type": "destination", "incident_id": served.incident_id, "facility": OTHER, "report_id": key()})
    assert chosen["type"] == "error" and chosen["error"]["code"] == "conflict" and chosen["error"]["field"] == "incident_id", chosen
    handed = await served.phone.request({"type": "handover", "incident_id": served.incident_id, "report_id": key()})
    assert handed["type"] == "error" and handed["error"]["code"] == "conflict" and handed["error"]["field"] == "incident_id", handed
    status, body = await api.call("POST", f"/api/notices/{notice['id']}/handover", served.crew)
    assert status == 409 and body["error"]["field"] == "id", body
    assert await _state(con, served.incident_id) == before
    assert await con.fetchval("SELECT status FROM prearrival_notices WHERE id = $1", notice["id"]) == "sent"

    # Signs measured while it served still count when they arrive after it left.
    late = await served.phone.request({"type": "vitals", "incident_id": served.incident_id, "report_id": key(), "vitals": {"pulse": 96}})
    assert late["type"] == "ok" and late["duplicate"] is False, late


async def test_a_unit_whose_assignment_ended_cannot_hand_over_afterwards(api: Api, con: asyncpg.Connection) -> None:
    served = await served_incident(api, con)
    assert (await served.phone.request({"type": "destination", "incident_id": served.incident_id, "facility": HOSPITAL,
                                        "report_id": key()}))["type"] == "ok"
    [notice] = await notices(api, served.crew, served.incident_id)
    for step in ("on_scene", "transporting", "at_hospital", "available"):
        assert (await served.phone.request({"type": "status", "status": step}))["status"] == step
    assert await con.fetchval("SELECT ended_at IS NOT NULL FROM assignments WHERE id = $1", served.assignment_id)
    status, body = await api.call("POST", f"/api/notices/{notice['id']}/handover", served.crew)
    assert status == 409 and body["error"]["field"] == "id", body
    handed = await served.phone.request({"type": "handover", "incident_id": served.incident_id, "report_id": key()})
    assert handed["type"] == "error" and handed["error"]["field"] == "incident_id", handed
    assert await con.fetchval("SELECT status FROM prearrival_notices WHERE id = $1", notice["id"]) == "sent"
    # The hospital still records it.
    status, body = await api.call("POST", f"/api/notices/{notice['id']}/handover", await api.login("hospital"))
    assert status == 200 and body["notice"]["status"] == "handed_over", body
