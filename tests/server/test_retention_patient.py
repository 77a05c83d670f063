"""Retention of the patient data a crew and a hospital add to an incident: once the closed incident is pseudonymised,
its patient keeps the age in tens (and the sex), its vitals keep only when and by whom they were measured, a hospital's
reason for declining it is replaced, in the tables and in every event that copied them; an open incident keeps all,
and the metrics are unchanged."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import asyncpg

from dispatch.vitals import RANGES
from server import db, retention
from tests.conftest import Api, start_api
from tests.server.notice_support import HOSPITAL, OTHER, Served, hospital_account, served_incident
from tests.server.test_consults import close_api
from tests.server.test_retention import DAY, config_for

SIGNS = {"systolic": 93, "diastolic": 61, "pulse": 127, "spo2": 89, "gcs": 13, "resp_rate": 27}


async def _patient_case(api: Api, con: asyncpg.Connection, served: Served, age: int, reason: str) -> None:
    """The operator records the patient; the crew sends vitals; one hospital declines with ``reason``, another takes
    the patient, who is handed over."""
    status, body = await api.call("PUT", f"/api/incidents/{served.incident_id}/patient", served.operator, json={"age": age, "sex": "female"})
    assert status == 200, body
    reply = await served.phone.request({"type": "vitals", "incident_id": served.incident_id, "report_id": uuid.uuid4().hex, "vitals": SIGNS})
    assert reply["type"] == "ok", reply
    path = f"/api/incidents/{served.incident_id}/destination"
    assert (await api.call("POST", path, served.operator, json={"facility": OTHER}))[0] == 200
    notice = await con.fetchval("SELECT id FROM prearrival_notices WHERE incident_id = $1 AND status = 'sent'", uuid.UUID(served.incident_id))
    status, body = await api.call("POST", f"/api/notices/{notice}/decline", await hospital_account(api, con, OTHER), json={"reason": reason})
    assert status == 200, body
    assert (await api.call("POST", path, served.operator, json={"facility": HOSPITAL}))[0] == 200
    for step in ("on_scene", "transporting", "at_hospital"):
        assert (await served.phone.request({"type": "status", "status": step}))["status"] == step
    notice = await con.fetchval("SELECT id FROM prearrival_notices WHERE incident_id = $1 AND status = 'sent'", uuid.UUID(served.incident_id))
    status, body = await api.call("POST", f"/api/notices/{notice}/handover", await api.login("hospital"))
    assert status == 200, body


async def _personal(con: asyncpg.Connection, incident_id: str) -> dict[str, Any]:
    """What the tables and the events hold of the incident's patient."""
    key = uuid.UUID(incident_id)
    events = await con.fetch("SELECT type, payload FROM events WHERE payload->>'incident_id' = $1 ORDER BY id", incident_id)
    return {
        "patient": dict(await con.fetchrow("SELECT age, sex FROM incident_patients WHERE incident_id = $1", key)),
        "vitals": [dict(r) for r in await con.fetch(f"SELECT measured_at, unit_id, {', '.join(RANGES)} FROM incident_vitals WHERE incident_id = $1",
                                                    key)],
        "reasons": [r["decline_reason"] for r in await con.fetch("SELECT decline_reason FROM prearrival_notices WHERE incident_id = $1 "
                                                                   "AND status = 'declined'", key)],
        "event_patients": [e["payload"]["patient"] for e in events if e["type"] == "incident.patient"],
        "event_vitals": [e["payload"]["vitals"] for e in events if e["type"] == "incident.vitals"],
        "event_reasons": [e["payload"]["reason"] for e in events if e["type"] == "notice.declined" or e["payload"].get("alert") == "notice_declined"],
        "text": "".join(str(e["payload"]) for e in events),
    }


async def test_the_sweep_reduces_the_patient_s_age_vitals_and_decline_reason_everywhere(demo_dsn: str, tmp_path: Path) -> None:
    config = config_for(demo_dsn, tmp_path / "var")
    api = await start_api(demo_dsn, config)
    con = await db.connect(demo_dsn)
    try:
        closed = await served_incident(api, con)
        await _patient_case(api, con, closed, 58, "CT scan rusak sejak pagi")
        assert (await closed.phone.request({"type": "status", "status": "available"}))["status"] == "available"
        status, body = await api.call("POST", f"/api/incidents/{closed.incident_id}/close", closed.operator, json={"outcome": "emergency"})
        assert status == 200, body
        still_open = await served_incident(api, con, phone="0812-9999-5555", location={"lat": -6.30, "lon": 106.66})
        await _patient_case(api, con, still_open, 47, "IGD penuh malam ini")
        before = await _personal(con, closed.incident_id)
        assert before["patient"] == {"age": 58, "sex": "female"} and before["event_patients"] == [{"age": 58, "sex": "female"}]
        assert [{k: v[k] for k in RANGES} for v in before["vitals"]] == [SIGNS] == [{k: v[k] for k in RANGES} for v in before["event_vitals"]]
        assert before["reasons"] == ["CT scan rusak sejak pagi"] and before["event_reasons"] == ["CT scan rusak sejak pagi"] * 2
        # The audit log is append-only (retention deletes whole entries past their own time): it records the decline,
        # not its free text.
        audited = await con.fetch("SELECT detail FROM audit_log WHERE action = 'notice.declined' AND detail->>'incident_id' = $1",
                                  closed.incident_id)
        assert [dict(r["detail"]) for r in audited] == [{"incident_id": closed.incident_id}]
        open_before = await _personal(con, still_open.incident_id)
        status, metrics_before = await api.call("GET", "/api/metrics", closed.operator)
        assert status == 200 and metrics_before["offload_by_hospital"][HOSPITAL]["offload_s"]["count"] == 2

        far = dt.datetime.now(dt.UTC) + 1830 * DAY
        counts = await retention.sweep(con, config, far)
        assert counts is not None and counts["incidents"] == 1

        after = await _personal(con, closed.incident_id)
        assert after["patient"] == {"age": 50, "sex": "female"} and after["event_patients"] == [{"age": 50, "sex": "female"}]
        no_signs = dict.fromkeys(RANGES)
        assert [{k: v[k] for k in RANGES} for v in after["vitals"]] == [no_signs]
        assert [(v["measured_at"], v["unit_id"]) for v in after["vitals"]] == [(v["measured_at"], v["unit_id"]) for v in before["vitals"]]
        assert [{k: v[k] for k in RANGES} for v in after["event_vitals"]] == [no_signs]
        assert after["event_vitals"][0]["measured_at"] == before["event_vitals"][0]["measured_at"]
        assert after["reasons"] == [retention.REMOVED] and after["event_reasons"] == [retention.REMOVED] * 2
        assert "CT scan rusak" not in after["text"]
        assert await con.fetchval("SELECT count(*) FROM prearrival_notices WHERE decline_reason LIKE 'CT scan%'") == 0
        # The open incident keeps everything; the metrics (offload per hospital among them) are unchanged.
        assert await _personal(con, still_open.incident_id) == open_before
        status, metrics_after = await api.call("GET", "/api/metrics", closed.operator)
        assert status == 200 and metrics_after == metrics_before
        # The pre-arrival notices keep their states and times.
        states = await con.fetch("SELECT status, handed_over_at IS NOT NULL AS handed FROM prearrival_notices WHERE incident_id = $1 ORDER BY id",
                                 uuid.UUID(closed.incident_id))
        assert [tuple(r) for r in states] == [("declined", False), ("handed_over", True)]
        # A second run changes nothing.
        again = await retention.sweep(con, config, far)
        assert again is not None and set(again.values()) == {0}
        assert await _personal(con, closed.incident_id) == after
    finally:
        await con.close()
        await close_api(api)
