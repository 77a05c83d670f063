"""Referrals from a consult: the specialist refers to a hospital ranked from the puskesmas, the hospital receives the
request at once and accepts (an inter-facility transfer incident, recommended, dispatched, linked both ways) or declines
with a reason both doctors read; bad input changes nothing; another hospital reaches nothing of it."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from dispatch.triage import default_triage_table
from server import db, events, incidents, migrate, referrals, transfers
from server.live import audience_of
from server.users import list_users
from tests.conftest import Api, start_api
from tests.server.dispatch_support import Socket
from tests.server.test_consult_files import PNG
from tests.server.test_consults import OUTCOME, PATIENT, accepted_consult, add_users, close_api, consult_config

HOSPITAL = "rs-rsu-kota-tangsel"  # the demo hospital account's
OTHER = "rs-eka-hospital-bsd"
REFERRAL = {"hospital": HOSPITAL, "icd10": "I63.9", "reason": "Stroke infark < 3 jam, perlu CT dan trombolisis",
            "urgency": "emergency", "service": "ct", "transport": True}
REFER = {**OUTCOME, "decision": "refer", "referral": REFERRAL}


@pytest.fixture
async def capi(demo_dsn: str, tmp_path: Path) -> AsyncIterator[Api]:
    client = await start_api(demo_dsn, consult_config(demo_dsn, tmp_path))
    yield client
    await close_api(client)


async def upload(api: Api, consult_id: str, token: str) -> str:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "image/png"}
    async with api.session.post(api.url(f"/api/consults/{consult_id}/attachments"), params={"filename": "ct.png"}, data=PNG,
                                headers=headers) as r:
        assert r.status == 201
        return str((await r.json())["attachment"]["id"])


async def fetch(api: Api, path: str, token: str) -> int:
    async with api.session.get(api.url(path), headers={"Authorization": f"Bearer {token}"}) as r:
        await r.read()
        return r.status


async def referred(api: Api, referral: dict[str, Any] = REFERRAL) -> tuple[str, str, str, str]:
    """A consult with an attachment that the specialist completed with ``referral``: (consult id, attachment id, pk, sp)."""
    consult_id, pk, sp = await accepted_consult(api)
    attachment = await upload(api, consult_id, pk)
    status, body = await api.call("POST", f"/api/consults/{consult_id}/complete", sp, json={"outcome": {**REFER, "referral": referral}})
    assert status == 200, body
    return consult_id, attachment, pk, sp


async def other_hospital(api: Api) -> str:
    """A token of an account bound to another hospital."""
    name = f"igd{uuid.uuid4().hex[:6]}"
    await add_users(api.dsn, name, 1, role="hospital", facility=OTHER)
    return await api.login(f"{name}0", "demo119x")


async def test_the_specialist_chooses_among_hospitals_ranked_from_the_puskesmas_for_the_service(capi: Api) -> None:
    consult_id, pk, sp = await accepted_consult(capi)
    status, options = await capi.call("GET", f"/api/consults/{consult_id}/referral-options?service=cath_lab", sp)
    assert status == 200, options
    assert options["needed_service"] == "cath_lab" and options["urgency"] == "emergency"
    hospitals = options["hospitals"]
    capable = [h for h in hospitals if h["capable"]]
    assert capable and hospitals[: len(capable)] == capable and all("cath_lab" in h["services"] for h in capable)
    assert [h["eta_s"] for h in capable] == sorted(h["eta_s"] for h in capable)
    # Ranked from the puskesmas: its nearest hospital is first among those without the service too.
    con = await db.connect(capi.dsn)
    try:
        me = await capi.call("GET", "/api/me", pk)
        place = await con.fetchrow("SELECT lat, lon FROM facilities WHERE code = $1", me[1]["facility_code"])
    finally:
        await con.close()
    nearest = min(hospitals, key=lambda h: (h["lat"] - place["lat"]) ** 2 + (h["lon"] - place["lon"]) ** 2)
    assert nearest["eta_s"] == min(h["eta_s"] for h in hospitals)
    assert {"code": "I21.9", "label_id": "Infark miokard akut", "label_en": "Acute myocardial infarction"} in options["diagnoses"]
    assert "ct" in options["services"]
    status, bad = await capi.call("GET", f"/api/consults/{consult_id}/referral-options?service=teleport", sp)
    assert status == 422 and bad["error"]["field"] == "service"
    # Only the consult's own specialist, while it is open.
    assert (await capi.call("GET", f"/api/consults/{consult_id}/referral-options", pk))[0] == 403


async def test_refer_accept_and_the_transfer_is_recommended_dispatched_and_linked_both_ways(capi: Api) -> None:
    hospital = await capi.login("hospital")
    socket = await Socket.open(capi, "/ws/events", hospital)
    consult_id, attachment, pk, sp = await referred(capi)
    # The hospital hears of it at once, with no patient data in the event.
    arrived = await socket.event("referral.requested", consult_id=consult_id)
    assert arrived["data"]["hospital"] == HOSPITAL and "patient" not in arrived["data"]
    status, listing = await capi.call("GET", "/api/referrals", hospital)
    assert status == 200
    [request] = listing["referrals"]
    assert request["state"] == "requested" and request["consult_id"] == consult_id
    assert (request["icd10"], request["reason"], request["service"], request["urgency"], request["transport"]) == (
        "I63.9", REFERRAL["reason"], "ct", "emergency", True)
    assert request["patient"] == PATIENT and request["soap"] == OUTCOME["soap"]
    assert [a["id"] for a in request["attachments"]] == [attachment]
    assert request["from"]["facility_name"] and request["from"]["specialist_name"]
    assert await fetch(capi, f"/api/consults/{consult_id}/attachments/{attachment}", hospital) == 200

    status, body = await capi.call("POST", f"/api/referrals/{request['id']}/accept", hospital)
    assert status == 200, body
    incident_id = body["referral"]["incident_id"]
    assert body["referral"]["state"] == "accepted" and incident_id
    await socket.event("referral.accepted", referral_id=request["id"])
    await socket.event("referral.transfer", incident_id=incident_id)

    operator = await capi.login("operator")
    status, found = await capi.call("GET", f"/api/incidents/{incident_id}", operator)
    incident = found["incident"]
    con = await db.connect(capi.dsn)
    try:
        place = await con.fetchrow("SELECT f.lat, f.lon FROM consults c JOIN facilities f ON f.code = c.facility_code WHERE c.id = $1",
                                   uuid.UUID(consult_id))
    finally:
        await con.close()
    assert (incident["call_type"], incident["priority"], incident["destination"]) == ("interfacility_transfer", "merah", HOSPITAL)
    assert incident["location"] == {"lat": place["lat"], "lon": place["lon"]}
    assert incident["referral_id"] == request["id"] and incident["needs"] == ["bls", "transport"]
    status, timeline = await capi.call("GET", f"/api/incidents/{incident_id}/timeline", operator)
    types = [e["type"] for e in timeline["timeline"]]
    # The destination set on the transfer sends the hospital its pre-arrival notice, as any destination does.
    assert types[:5] == ["call.received", "incident.destination", "notice.sent", "referral.transfer", "call.assessed"], types
    status, notices = await capi.call("GET", "/api/notices", hospital)
    assert status == 200 and [n["incident_id"] for n in notices["notices"]] == [incident_id]
    # Recommended like any call, then dispatched.
    status, tiers = await capi.call("GET", f"/api/incidents/{incident_id}/recommendations", operator)
    assert status == 200 and tiers["transport"], tiers
    unit = tiers["transport"][0]["unit_id"]
    status, sent = await capi.call("POST", f"/api/incidents/{incident_id}/dispatch", operator, json={"unit_id": unit})
    assert status == 201, sent

    # The consult's doctors see the answer and the transfer on the consult, and on its timeline.
    for token in (pk, sp):
        status, seen = await capi.call("GET", f"/api/consults/{consult_id}", token)
        assert seen["consult"]["referral"]["state"] == "accepted" and seen["consult"]["referral"]["incident_id"] == incident_id
        assert seen["consult"]["referral"]["hospital_name"] == "RSU Kota Tangerang Selatan"
        status, timeline = await capi.call("GET", f"/api/consults/{consult_id}/timeline", token)
        assert [e["type"] for e in timeline["timeline"]][-4:] == [
            "consult.completed", "referral.requested", "referral.accepted", "referral.transfer"]
    admin = await capi.login("admin")
    _, log = await capi.call("GET", f"/api/audit?object=referral:{request['id']}", admin)
    assert {e["action"] for e in log["entries"]} >= {"referral.request", "referral.accept", "referral.transfer"}

    # Accepting again changes nothing: the same incident, no second one.
    status, again = await capi.call("POST", f"/api/referrals/{request['id']}/accept", hospital)
    assert status == 200 and again["referral"]["incident_id"] == incident_id
    status, wrong = await capi.call("POST", f"/api/referrals/{request['id']}/decline", hospital, json={"reason": "penuh"})
    assert status == 409
    assert await incident_count(capi, request["id"]) == 1
    await socket.close()


async def incident_count(api: Api, referral_id: str) -> int:
    """The transfer incidents (each test's database starts with none): linked to the referral or not."""
    con = await db.connect(api.dsn)
    try:
        assert await con.fetchval("SELECT count(*) FROM incidents WHERE call_type = 'interfacility_transfer' AND referral_id IS DISTINCT FROM $1",
                                  uuid.UUID(referral_id)) == 0
        return int(await con.fetchval("SELECT count(*) FROM incidents WHERE referral_id = $1", uuid.UUID(referral_id)))
    finally:
        await con.close()


async def test_accepts_at_once_make_one_transfer(capi: Api) -> None:
    consult_id, _, _, _ = await referred(capi, {**REFERRAL, "urgency": "routine"})
    tokens = [await capi.login("hospital") for _ in range(6)]
    [request] = (await capi.call("GET", "/api/referrals", tokens[0]))[1]["referrals"]
    answers = await asyncio.gather(*(capi.call("POST", f"/api/referrals/{request['id']}/accept", t) for t in tokens))
    assert [status for status, _ in answers] == [200] * len(tokens)
    assert len({body["referral"]["incident_id"] for _, body in answers}) == 1
    assert await incident_count(capi, request["id"]) == 1
    operator = await capi.login("operator")
    _, found = await capi.call("GET", f"/api/incidents/{answers[0][1]['referral']['incident_id']}", operator)
    assert found["incident"]["priority"] == "hijau"
    con = await db.connect(capi.dsn)
    try:
        assert await con.fetchval("SELECT count(*) FROM events WHERE type = 'referral.accepted' AND payload->>'consult_id' = $1",
                                  consult_id) == 1
    finally:
        await con.close()


async def test_a_referral_without_transport_makes_no_incident(capi: Api) -> None:
    await referred(capi, {**REFERRAL, "transport": False})
    hospital = await capi.login("hospital")
    [request] = (await capi.call("GET", "/api/referrals", hospital))[1]["referrals"]
    status, body = await capi.call("POST", f"/api/referrals/{request['id']}/accept", hospital)
    assert status == 200 and body["referral"]["state"] == "accepted" and body["referral"]["incident_id"] is None
    assert await incident_count(capi, request["id"]) == 0


async def test_a_declined_referral_shows_its_reason_to_both_doctors_and_closes_the_attachments(capi: Api) -> None:
    consult_id, attachment, pk, sp = await referred(capi)
    hospital = await capi.login("hospital")
    [request] = (await capi.call("GET", "/api/referrals", hospital))[1]["referrals"]
    for bad in ({}, {"reason": " "}, {"reason": "x" * 501}, {"reason": 5}, {"reason": "penuh\n\x1b[2J"}):
        status, body = await capi.call("POST", f"/api/referrals/{request['id']}/decline", hospital, json=bad)
        assert status == 422 and body["error"]["field"] == "reason", (bad, body)
    assert (await capi.call("GET", "/api/referrals", hospital))[1]["referrals"][0]["state"] == "requested"
    reason = "CT sedang rusak, tidak ada dokter saraf jaga"
    status, body = await capi.call("POST", f"/api/referrals/{request['id']}/decline", hospital, json={"reason": reason})
    assert status == 200 and body["referral"]["state"] == "declined" and body["referral"]["decline_reason"] == reason
    for token in (pk, sp):
        _, seen = await capi.call("GET", f"/api/consults/{consult_id}", token)
        assert (seen["consult"]["referral"]["state"], seen["consult"]["referral"]["decline_reason"]) == ("declined", reason)
    status, _ = await capi.call("POST", f"/api/referrals/{request['id']}/accept", hospital)
    assert status == 409
    assert await incident_count(capi, request["id"]) == 0
    # No longer addressed to it: the hospital reads the consult's attachments no more.
    assert await fetch(capi, f"/api/consults/{consult_id}/attachments/{attachment}", hospital) == 403
    admin = await capi.login("admin")
    _, log = await capi.call("GET", f"/api/audit?action=referral.decline&object=referral:{request['id']}", admin)
    # Audited, without its free text: the append-only log would keep it past the referral's retention.
    assert [e["detail"] for e in log["entries"]] == [{"consult": consult_id}]


@pytest.mark.parametrize(("change", "field"), [
    ({"icd10": "I63"}, None),
    ({"icd10": "STROKE"}, "outcome.referral.icd10"),
    ({"icd10": "I6.39"}, "outcome.referral.icd10"),
    ({"hospital": "rs-nowhere"}, "outcome.referral.hospital"),
    ({"hospital": "pkm-serpong-1"}, "outcome.referral.hospital"),
    ({"service": "teleport"}, "outcome.referral.service"),
    ({"urgency": "asap"}, "outcome.referral.urgency"),
])
async def test_a_bad_referral_names_the_field_and_changes_nothing(capi: Api, change: dict[str, Any], field: str | None) -> None:
    consult_id, pk, sp = await accepted_consult(capi)
    con = await db.connect(capi.dsn)
    try:
        last = await events.last_id(con)
        status, body = await capi.call("POST", f"/api/consults/{consult_id}/complete", sp,
                                       json={"outcome": {**REFER, "referral": {**REFERRAL, **change}}})
        if field is None:  # a three-character code is a whole ICD-10 category
            assert status == 200, body
            return
        assert status == 422 and body["error"]["field"] == field, body
        assert await con.fetchval("SELECT state FROM consults WHERE id = $1", uuid.UUID(consult_id)) == "accepted"
        assert await con.fetchval("SELECT count(*) FROM referrals") == 0
        assert await con.fetchval("SELECT count(*) FROM events WHERE id > $1", last) == 0
    finally:
        await con.close()
    # A free-text hospital is what older consults hold; a new referral names a hospital of the region.
    status, body = await capi.call("POST", f"/api/consults/{consult_id}/complete", sp,
                                   json={"outcome": {**OUTCOME, "referral": None, "refer_to": "RSUD Kota"}})
    assert status == 422 and body["error"]["field"] == "outcome.refer_to"


async def test_another_hospital_reaches_nothing_of_a_referral_addressed_elsewhere(capi: Api) -> None:
    other = await other_hospital(capi)
    consult_id, attachment, _, _ = await referred(capi)
    hospital = await capi.login("hospital")
    [request] = (await capi.call("GET", "/api/referrals", hospital))[1]["referrals"]
    assert (await capi.call("GET", "/api/referrals", other))[1]["referrals"] == []
    for action, body in (("accept", None), ("decline", {"reason": "bukan untuk kami"})):
        status, _ = await capi.call("POST", f"/api/referrals/{request['id']}/{action}", other, json=body)
        assert status == 404, action
    assert await fetch(capi, f"/api/consults/{consult_id}/attachments/{attachment}", other) == 403
    assert await fetch(capi, f"/api/consults/{consult_id}", other) == 403
    assert await fetch(capi, f"/api/consults/{consult_id}/timeline", other) == 403
    status, _ = await capi.call("POST", f"/api/referrals/{request['id']}/accept", hospital)
    assert status == 200
    # Nothing of it is in the other hospital's event stream (what its socket is sent and replays).
    con = await db.connect(capi.dsn)
    try:
        [account] = [u for u in await list_users(con) if u.facility_code == OTHER]
        seen = await events.since(con, 0, audience_of(account), limit=100_000)
        assert [e.type for e in seen if e.type.startswith(("referral.", "consult.", "call.", "incident."))] == []
        assert await con.fetchval("SELECT state FROM referrals WHERE id = $1", uuid.UUID(request["id"])) == "accepted"
    finally:
        await con.close()


async def test_the_upgrade_adds_the_transfer_call_type_to_a_table_seeded_before(bare_dsn: str) -> None:
    con = await asyncpg.connect(bare_dsn)
    try:
        available = migrate.available()
        at = next(n for n, m in enumerate(available) if m.name.endswith("_referrals.sql"))
        for migration in available[:at]:
            await con.execute(migration.sql)
        await incidents.seed_triage(con)
        await con.execute("DELETE FROM triage_types WHERE code = $1", transfers.CALL_TYPE)  # as the table was before
        await con.execute(available[at].sql)
        row = await con.fetchrow("SELECT label_id, priority, capabilities, service FROM triage_types WHERE code = $1", transfers.CALL_TYPE)
        assert dict(row) == {"label_id": "Rujukan antar fasilitas", "priority": "kuning", "capabilities": ["transport"], "service": None}
        entry = default_triage_table().get(transfers.CALL_TYPE)
        assert (entry.label_id, entry.priority.value, sorted(entry.capabilities), entry.service) == tuple(row.values())
    finally:
        await con.close()


async def test_a_consult_completed_with_a_hospital_named_as_text_still_reads(capi: Api) -> None:
    consult_id, pk, sp = await accepted_consult(capi)
    advice = {**OUTCOME, "decision": "advice", "referral": None}
    status, body = await capi.call("POST", f"/api/consults/{consult_id}/complete", sp, json={"outcome": advice})
    assert status == 200, body
    older = {"soap": OUTCOME["soap"], "decision": "refer", "refer_to": "RSUD Kota Tangerang Selatan"}
    con = await db.connect(capi.dsn)
    try:
        await con.execute("UPDATE consults SET outcome = $2 WHERE id = $1", uuid.UUID(consult_id), older)
    finally:
        await con.close()
    for token in (pk, sp):
        status, seen = await capi.call("GET", f"/api/consults/{consult_id}", token)
        assert status == 200 and seen["consult"]["outcome"] == older and seen["consult"]["referral"] is None
    assert (await capi.call("GET", "/api/consults", pk))[0] == 200


async def test_an_accept_whose_transfer_failed_keeps_the_answer_and_accepting_again_makes_it(capi: Api) -> None:
    consult_id, _, pk, _ = await referred(capi)
    hospital = await capi.login("hospital")
    [request] = (await capi.call("GET", "/api/referrals", hospital))[1]["referrals"]
    con = await db.connect(capi.dsn)
    try:
        # The database refuses the transfer's intake once (a real failure inside the transaction that records the call).
        await con.execute("""CREATE FUNCTION refuse_transfer() RETURNS trigger LANGUAGE plpgsql AS
                             $$ BEGIN RAISE EXCEPTION 'intake down'; END $$""")
        await con.execute("""CREATE TRIGGER refuse_transfer BEFORE INSERT ON incidents FOR EACH ROW
                             WHEN (NEW.call_type = 'interfacility_transfer') EXECUTE FUNCTION refuse_transfer()""")
        status, _ = await capi.call("POST", f"/api/referrals/{request['id']}/accept", hospital)
        assert status >= 500
        # The hospital's answer stands; the doctors see it, and that the transfer is still to be made.
        _, seen = await capi.call("GET", f"/api/consults/{consult_id}", pk)
        assert (seen["consult"]["referral"]["state"], seen["consult"]["referral"]["incident_id"]) == ("accepted", None)
        await con.execute("DROP TRIGGER refuse_transfer ON incidents")
    finally:
        await con.close()
    status, body = await capi.call("POST", f"/api/referrals/{request['id']}/accept", hospital)
    assert status == 200 and body["referral"]["incident_id"], body
    assert await incident_count(capi, request["id"]) == 1


async def test_with_auto_dispatch_an_emergency_transfer_gets_its_carrier_at_once(demo_dsn: str, tmp_path: Path) -> None:
    config = consult_config(demo_dsn, tmp_path)
    api = await start_api(demo_dsn, dataclasses.replace(config, dispatch=dataclasses.replace(config.dispatch, auto_dispatch_merah=True)))
    try:
        await referred(api)
        hospital = await api.login("hospital")
        _, listed = await api.call("GET", "/api/referrals", hospital)
        status, body = await api.call("POST", f"/api/referrals/{listed['referrals'][0]['id']}/accept", hospital)
        assert status == 200, body
        incident_id = body["referral"]["incident_id"]
        _, found = await api.call("GET", f"/api/incidents/{incident_id}", await api.login("operator"))
    finally:
        await close_api(api)
    # A merah transfer is sent without waiting for an operator, as a merah call is: a unit that can carry the patient.
    assert found["incident"]["priority"] == "merah" and found["incident"]["status"] == "dispatched"
    con = await db.connect(demo_dsn)
    try:
        sent = await con.fetch(
            """SELECT u.capabilities FROM assignments a JOIN units u ON u.id = a.unit_id
               WHERE a.incident_id = $1 AND a.ended_at IS NULL""", uuid.UUID(incident_id))
    finally:
        await con.close()
    assert sent and any("transport" in s["capabilities"] for s in sent)


async def test_the_hospital_s_list_reads_every_referral_s_attachments_at_once(capi: Api) -> None:
    first, _, _, _ = await referred(capi)
    second, _, _, _ = await referred(capi)
    con = await db.connect(capi.dsn)
    try:
        [user] = [u for u in await list_users(con) if u.username == "hospital"]
        await referrals.for_hospital(con, user)  # a connection learns the types of what it reads once (asyncpg)
        sent: list[str] = []
        con.add_query_logger(lambda record: sent.append(record.query))
        listed = await referrals.for_hospital(con, user)
    finally:
        await con.close()
    assert {r["consult_id"] for r in listed} >= {first, second}
    assert all(len(r["attachments"]) == 1 for r in listed if r["consult_id"] in (first, second))
    assert len(sent) <= 3, sent  # the referrals, their consults, their attachments: however many referrals
