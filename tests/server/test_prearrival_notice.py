"""The pre-arrival notice: sent when a destination is set (by the operator or the crew), acknowledged or declined by
the hospital, withdrawn when another is chosen, fed by the crew's vitals, closed by the handover, whose offload time
is a metric per hospital."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import asyncpg

from tests.conftest import Api
from tests.server.dispatch_support import Socket
from tests.server.notice_support import HOSPITAL, OTHER, THIRD, hospital_account, notices, served_incident


def key() -> str:
    return uuid.uuid4().hex


async def test_the_operator_s_choice_notifies_the_hospital_which_acknowledges(api: Api, con: asyncpg.Connection) -> None:
    served = await served_incident(api, con)
    hospital = await api.login("hospital")
    desk = await Socket.open(api, "/ws/events", hospital)
    console = await Socket.open(api, "/ws/operator", served.operator)
    status, _ = await api.call("PUT", f"/api/incidents/{served.incident_id}/patient", served.operator, json={"age": 58, "sex": "male"})
    assert status == 200

    status, body = await api.call("POST", f"/api/incidents/{served.incident_id}/destination", served.operator, json={"facility": HOSPITAL})
    assert status == 200, body
    sent = await desk.event("notice.sent", incident_id=served.incident_id)
    assert sent["data"]["facility"] == HOSPITAL and "complaint" not in sent["data"]  # the event carries ids, the read the patient
    [notice] = await notices(api, hospital)
    assert notice["id"] == sent["data"]["notice_id"] and notice["status"] == "sent"
    assert notice["priority"] == "merah" and notice["call_type"] == "chest_pain" and notice["complaint"] == "nyeri dada sejak 30 menit"
    assert notice["patient"] == {"age": 58, "sex": "male"}
    assert [u["unit_id"] for u in notice["units"]] == [served.unit_id] and notice["units"][0]["status"] == "en_route"
    assert notice["eta_s"] is None  # nobody carries the patient yet

    # The crew's vitals reach the hospital live, and the unit's move toward it gives an ETA.
    reply = await served.phone.request({"type": "vitals", "incident_id": served.incident_id, "report_id": key(),
                                        "vitals": {"systolic": 90, "diastolic": 60, "pulse": 118, "spo2": 91, "gcs": 14, "resp_rate": 24}})
    assert reply["type"] == "ok" and reply["duplicate"] is False, reply
    await desk.event("incident.vitals", incident_id=served.incident_id)
    for step in ("on_scene", "transporting"):
        assert (await served.phone.request({"type": "status", "status": step}))["status"] == step
        await desk.event("notice.unit", notice_id=notice["id"], status=step)
    [notice] = await notices(api, hospital)
    assert notice["vitals"]["pulse"] == 118 and notice["vitals"]["spo2"] == 91
    assert notice["units"][0]["status"] == "transporting" and notice["eta_s"] > 0

    status, body = await api.call("POST", f"/api/notices/{notice['id']}/acknowledge", hospital)
    assert status == 200 and body["notice"]["status"] == "acknowledged" and body["notice"]["acknowledged_by"] == "hospital"
    await console.event("notice.acknowledged", incident_id=served.incident_id)
    await served.phone.event("notice.acknowledged", incident_id=served.incident_id)

    status, timeline = await api.call("GET", f"/api/incidents/{served.incident_id}/timeline", served.operator)
    kinds = [e["type"] for e in timeline["timeline"]]
    for kind in ("incident.patient", "incident.destination", "notice.sent", "incident.vitals", "notice.acknowledged"):
        assert kind in kinds, kinds
    audited = {r["action"] for r in await con.fetch("SELECT action FROM audit_log")}
    assert {"incident.patient", "incident.vitals", "notice.sent", "notice.acknowledged", "notice.read"} <= audited


async def test_the_crew_s_choice_notifies_the_hospital_too(api: Api, con: asyncpg.Connection) -> None:
    served = await served_incident(api, con)
    hospital = await api.login("hospital")
    desk = await Socket.open(api, "/ws/events", hospital)
    reply = await served.phone.request({"type": "destination", "incident_id": served.incident_id, "facility": HOSPITAL, "report_id": key()})
    assert reply["type"] == "ok" and reply["destination"] == HOSPITAL, reply
    sent = await desk.event("notice.sent", incident_id=served.incident_id)
    assert sent["data"]["by"] == f"crew-{served.unit_id}"
    assert await con.fetchval("SELECT destination FROM incidents WHERE id = $1", uuid.UUID(served.incident_id)) == HOSPITAL
    # A crew cannot send another incident's patient anywhere, nor an unknown hospital.
    other = await served_incident(api, con, phone="0812-9999-0000", location={"lat": -6.30, "lon": 106.66})
    refused = await served.phone.request({"type": "destination", "incident_id": other.incident_id, "facility": HOSPITAL, "report_id": key()})
    assert refused["type"] == "error", refused
    refused = await served.phone.request({"type": "destination", "incident_id": served.incident_id, "facility": "rs-nowhere", "report_id": key()})
    assert refused["type"] == "error" and refused["error"]["field"] == "facility", refused


async def test_decline_alerts_the_operator_who_chooses_again_and_a_change_withdraws_the_old_notice(api: Api, con: asyncpg.Connection) -> None:
    served = await served_incident(api, con)
    first, second = await api.login("hospital"), await hospital_account(api, con, OTHER)
    first_desk, second_desk = await Socket.open(api, "/ws/events", first), await Socket.open(api, "/ws/events", second)
    console = await Socket.open(api, "/ws/operator", served.operator)
    path = f"/api/incidents/{served.incident_id}/destination"

    assert (await api.call("POST", path, served.operator, json={"facility": HOSPITAL}))[0] == 200
    old = (await first_desk.event("notice.sent", incident_id=served.incident_id))["data"]["notice_id"]
    # Choosing the same hospital again sends nothing new.
    assert (await api.call("POST", path, served.operator, json={"facility": HOSPITAL}))[0] == 200
    # Another hospital: the first sees its notice withdrawn, the second gets one.
    assert (await api.call("POST", path, served.operator, json={"facility": OTHER}))[0] == 200
    await first_desk.event("notice.withdrawn", notice_id=old)
    [withdrawn] = await notices(api, first)
    assert withdrawn["id"] == old and withdrawn["status"] == "withdrawn"
    assert withdrawn["complaint"] is None and withdrawn["patient"] is None and withdrawn["vitals"] is None and withdrawn["units"] == []
    status, _ = await api.call("POST", f"/api/notices/{old}/acknowledge", first)
    assert status == 409  # a withdrawn notice cannot be acknowledged
    new = (await second_desk.event("notice.sent", incident_id=served.incident_id))["data"]["notice_id"]
    assert await con.fetchval("SELECT count(*) FROM prearrival_notices WHERE incident_id = $1", uuid.UUID(served.incident_id)) == 2

    # A decline needs a reason, and then alerts the operators at once, naming the hospital and the reason.
    status, bad = await api.call("POST", f"/api/notices/{new}/decline", second, json={"reason": "  "})
    assert status == 422 and bad["error"]["field"] == "reason"
    status, body = await api.call("POST", f"/api/notices/{new}/decline", second, json={"reason": "CT rusak"})
    assert status == 200 and body["notice"]["status"] == "declined" and body["notice"]["decline_reason"] == "CT rusak"
    alert = await console.event("alert", incident_id=served.incident_id)
    assert alert["data"]["alert"] == "notice_declined" and alert["data"]["reason"] == "CT rusak"
    assert alert["data"]["hospital_name"] == "Eka Hospital BSD" and alert["data"]["facility"] == OTHER
    await console.event("notice.declined", notice_id=new)

    third = await hospital_account(api, con, THIRD)
    third_desk = await Socket.open(api, "/ws/events", third)
    assert (await api.call("POST", path, served.operator, json={"facility": THIRD}))[0] == 200
    await third_desk.event("notice.sent", incident_id=served.incident_id)
    states = dict(await con.fetch("SELECT facility_code, status FROM prearrival_notices WHERE incident_id = $1", uuid.UUID(served.incident_id)))
    assert states == {HOSPITAL: "withdrawn", OTHER: "declined", THIRD: "sent"}
    status, timeline = await api.call("GET", f"/api/incidents/{served.incident_id}/timeline", served.operator)
    kinds = [e["type"] for e in timeline["timeline"]]
    assert [k for k in kinds if k.startswith("notice.")] == ["notice.sent", "notice.withdrawn", "notice.sent", "notice.declined", "notice.sent"]


async def test_bad_vitals_are_refused_naming_the_field_and_a_critically_ill_patient_s_are_kept(api: Api, con: asyncpg.Connection) -> None:
    served = await served_incident(api, con)
    path = f"/api/incidents/{served.incident_id}/vitals"
    now = dt.datetime.now(dt.UTC)
    bad = [
        ({"pulse": 980}, "pulse"),
        ({"spo2": 9}, "spo2"),
        ({"spo2": "98"}, "spo2"),
        ({"gcs": 2}, "gcs"),
        ({"gcs": 16}, "gcs"),
        ({"resp_rate": 4.5}, "resp_rate"),
        ({"systolic": 120}, "diastolic"),
        ({"systolic": 80, "diastolic": 120}, "diastolic"),
        ({"pulse": 80, "measured_at": "2026-12-01T00:00:00"}, "measured_at"),
        ({"pulse": 80, "measured_at": (now + dt.timedelta(hours=1)).isoformat()}, "measured_at"),
        ({"pulse": 80, "temperature": 38}, "temperature"),
        ({}, "vitals"),
    ]
    for fields, field in bad:
        status, body = await api.call("POST", path, served.crew, json={"idempotency_key": key(), **fields})
        assert status == 422 and body["error"]["field"] == field, (fields, body)
    status, body = await api.call("POST", path, served.crew, json={"pulse": 80})
    assert status == 422 and body["error"]["field"] == "idempotency_key"
    assert await con.fetchval("SELECT count(*) FROM incident_vitals") == 0
    # Arrest and peri-arrest values are real values, not typos.
    arrest = {"systolic": 50, "diastolic": 20, "pulse": 0, "spo2": 40, "gcs": 3, "resp_rate": 0}
    status, body = await api.call("POST", path, served.operator, json={"idempotency_key": key(), **arrest})
    assert status == 201 and {k: body["vitals"][k] for k in arrest} == arrest, body
    status, body = await api.call("PUT", f"/api/incidents/{served.incident_id}/patient", served.crew, json={"age": 130})
    assert status == 422 and body["error"]["field"] == "age"
    status, body = await api.call("PUT", f"/api/incidents/{served.incident_id}/patient", served.crew, json={"sex": "x"})
    assert status == 422 and body["error"]["field"] == "sex"
    # Bad vitals on the phone's socket are refused the same way.
    reply = await served.phone.request({"type": "vitals", "incident_id": served.incident_id, "report_id": key(), "vitals": {"gcs": 1}})
    assert reply["type"] == "error" and reply["error"]["field"] == "gcs", reply
    assert await con.fetchval("SELECT count(*) FROM incident_vitals") == 1


async def test_vitals_kept_on_a_phone_without_signal_count_once_at_the_time_measured(api: Api, con: asyncpg.Connection) -> None:
    served = await served_incident(api, con)
    measured = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=40)).replace(microsecond=0)
    report = {"type": "vitals", "incident_id": served.incident_id, "report_id": key(),
              "vitals": {"pulse": 130, "spo2": 88, "measured_at": measured.isoformat()}, "patient": {"age": 7, "sex": "female"}}
    first = await served.phone.request(report)
    assert first["type"] == "ok" and first["duplicate"] is False, first
    # The reply was lost with the link: the phone sends the set again on a new socket, and again by HTTP.
    await served.phone.close()
    phone = await Socket.open(api, "/ws/unit", served.crew)
    again = await phone.request(report)
    assert again["type"] == "ok" and again["duplicate"] is True and again["vitals"]["id"] == first["vitals"]["id"]
    status, body = await api.call("POST", f"/api/incidents/{served.incident_id}/vitals", served.crew,
                                  json={"idempotency_key": report["report_id"], **report["vitals"]})
    assert status == 200 and body["duplicate"] is True
    rows = await con.fetch("SELECT measured_at, pulse FROM incident_vitals")
    assert [(r["measured_at"], r["pulse"]) for r in rows] == [(measured, 130)]
    assert await con.fetchval("SELECT count(*) FROM events WHERE type = 'incident.vitals'") == 1
    assert tuple(await con.fetchrow("SELECT age, sex FROM incident_patients")) == (7, "female")
    # The unit, once free, still adds what it measured on the way in; another unit's crew cannot.
    for step in ("on_scene", "transporting", "at_hospital", "available"):
        assert (await phone.request({"type": "status", "status": step}))["status"] == step
    late = await phone.request({**report, "report_id": key()})
    assert late["type"] == "ok" and late["duplicate"] is False, late
    stranger = await served_incident(api, con, phone="0812-9999-1111", location={"lat": -6.30, "lon": 106.66})
    status, body = await api.call("POST", f"/api/incidents/{served.incident_id}/vitals", stranger.crew,
                                  json={"idempotency_key": key(), "pulse": 90})
    assert status == 404


async def test_handover_after_arrival_gives_the_offload_time_per_hospital(api: Api, con: asyncpg.Connection) -> None:
    served = await served_incident(api, con)
    hospital = await api.login("hospital")
    assert (await api.call("POST", f"/api/incidents/{served.incident_id}/destination", served.operator, json={"facility": HOSPITAL}))[0] == 200
    [notice] = await notices(api, hospital)
    status, body = await api.call("POST", f"/api/notices/{notice['id']}/handover", hospital)
    assert status == 409 and body["error"]["field"] == "status"  # nobody has arrived yet
    for step in ("on_scene", "transporting", "at_hospital"):
        assert (await served.phone.request({"type": "status", "status": step}))["status"] == step
    # The ambulance has waited ten minutes at the door.
    await con.execute("UPDATE assignments SET at_hospital_at = now() - interval '600 seconds' WHERE id = $1", served.assignment_id)
    status, body = await api.call("POST", f"/api/notices/{notice['id']}/handover", hospital)
    assert status == 200 and body["notice"]["status"] == "handed_over", body
    status, again = await api.call("POST", f"/api/notices/{notice['id']}/handover", hospital)
    assert status == 200 and again["notice"]["handed_over_at"] == body["notice"]["handed_over_at"]
    status, metrics = await api.call("GET", "/api/metrics", served.operator)
    offload = metrics["offload_by_hospital"][HOSPITAL]
    assert offload["name"] == "RSU Kota Tangerang Selatan"
    assert offload["offload_s"]["count"] == 1 and 600 <= offload["offload_s"]["p50_s"] < 660
    status, timeline = await api.call("GET", f"/api/incidents/{served.incident_id}/timeline", served.operator)
    handed = [e for e in timeline["timeline"] if e["type"] == "notice.handover"]
    assert len(handed) == 1 and 600 <= handed[0]["data"]["offload_s"] < 660


async def test_the_crew_may_record_the_handover(api: Api, con: asyncpg.Connection) -> None:
    served = await served_incident(api, con)
    reply = await served.phone.request({"type": "destination", "incident_id": served.incident_id, "facility": HOSPITAL, "report_id": key()})
    assert reply["type"] == "ok"
    [notice] = await notices(api, served.crew, served.incident_id)
    for step in ("on_scene", "transporting", "at_hospital"):
        assert (await served.phone.request({"type": "status", "status": step}))["status"] == step
    status, body = await api.call("POST", f"/api/notices/{notice['id']}/handover", served.crew)
    assert status == 200 and body["notice"]["handed_over_by"] == f"crew-{served.unit_id}"
    status, metrics = await api.call("GET", "/api/metrics", served.operator)
    assert metrics["offload_by_hospital"][HOSPITAL]["offload_s"]["count"] == 1


async def test_a_handover_kept_on_the_crew_s_phone_counts_at_the_press(api: Api, con: asyncpg.Connection) -> None:
    served = await served_incident(api, con)
    early = await served.phone.request({"type": "handover", "incident_id": served.incident_id, "report_id": key()})
    assert early["type"] == "error" and early["error"]["field"] == "incident_id", early  # no hospital chosen yet
    chosen = await served.phone.request({"type": "destination", "incident_id": served.incident_id, "facility": HOSPITAL, "report_id": key()})
    assert chosen["type"] == "ok"
    before = await served.phone.request({"type": "handover", "incident_id": served.incident_id, "report_id": key()})
    assert before["type"] == "error" and before["error"]["field"] == "status", before  # not arrived yet
    for step in ("on_scene", "transporting", "at_hospital"):
        assert (await served.phone.request({"type": "status", "status": step}))["status"] == step
    await con.execute("UPDATE assignments SET at_hospital_at = now() - interval '600 seconds' WHERE id = $1", served.assignment_id)
    pressed = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=300)
    report = {"type": "handover", "incident_id": served.incident_id, "report_id": key(), "reported_at": pressed.isoformat()}
    done = await served.phone.request(report)
    assert done["type"] == "ok", done
    again = await served.phone.request(report)
    assert again["type"] == "ok" and again["handover"] == done["handover"]
    status, metrics = await api.call("GET", "/api/metrics", served.operator)
    assert 295 <= metrics["offload_by_hospital"][HOSPITAL]["offload_s"]["p50_s"] <= 305


async def test_concurrent_choices_leave_one_open_notice_and_a_resent_set_counts_once(api: Api, con: asyncpg.Connection) -> None:
    served = await served_incident(api, con)
    path = f"/api/incidents/{served.incident_id}/destination"
    choices = [HOSPITAL, OTHER, THIRD] * 4
    answers = await asyncio.gather(*(api.call("POST", path, served.operator, json={"facility": f}) for f in choices))
    assert [status for status, _ in answers] == [200] * len(choices)
    rows = await con.fetch("SELECT facility_code, status FROM prearrival_notices WHERE incident_id = $1 ORDER BY id", uuid.UUID(served.incident_id))
    assert [r["status"] for r in rows].count("sent") == 1 and {r["status"] for r in rows} == {"sent", "withdrawn"}
    assert rows[-1]["status"] == "sent"
    assert rows[-1]["facility_code"] == await con.fetchval("SELECT destination FROM incidents WHERE id = $1", uuid.UUID(served.incident_id))
    # One set sent at once by several retries (and over the socket): one row, one event.
    body = {"idempotency_key": key(), "pulse": 77}
    sent = await asyncio.gather(*(api.call("POST", f"/api/incidents/{served.incident_id}/vitals", served.crew, json=body) for _ in range(6)),
                                served.phone.request({"type": "vitals", "incident_id": served.incident_id, "report_id": body["idempotency_key"],
                                                      "vitals": {"pulse": 77}}))
    assert sorted(s for s, _ in sent[:-1]) == [200] * 5 + [201] or sorted(s for s, _ in sent[:-1]) == [200] * 6
    assert sent[-1]["type"] == "ok"  # type: ignore[index]
    assert await con.fetchval("SELECT count(*) FROM incident_vitals") == 1
    assert await con.fetchval("SELECT count(*) FROM events WHERE type = 'incident.vitals'") == 1
    # The same key for another incident's set is refused, naming the key.
    other = await served_incident(api, con, phone="0812-9999-2222", location={"lat": -6.30, "lon": 106.66})
    status, refused = await api.call("POST", f"/api/incidents/{other.incident_id}/vitals", other.operator, json=body)
    assert status == 409 and refused["error"]["field"] == "idempotency_key"


async def test_one_key_raced_for_by_two_incidents_goes_to_one_and_the_other_is_refused(api: Api, con: asyncpg.Connection) -> None:
    first = await served_incident(api, con)
    second = await served_incident(api, con, phone="0812-9999-3333", location={"lat": -6.30, "lon": 106.66})
    keys = [key() for _ in range(15)]
    answers = await asyncio.gather(*(
        api.call("POST", f"/api/incidents/{incident}/vitals", first.operator, json={"idempotency_key": k, "pulse": 90})
        for k in keys for incident in (first.incident_id, second.incident_id)
    ))
    statuses = [status for status, _ in answers]
    assert sorted(statuses) == [201] * len(keys) + [409] * len(keys), statuses
    assert all(body["error"]["field"] == "idempotency_key" for status, body in answers if status == 409)
    assert await con.fetchval("SELECT count(*) FROM incident_vitals") == len(keys)
