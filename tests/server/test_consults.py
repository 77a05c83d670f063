"""Telemedicine consults over HTTP: request, queue, on call, accept (one wins), decline,
complete (store-and-forward), cancel, ICE servers, and the audit of patient-data reads.

The helpers here are shared by the other test_consult*.py files.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime as dt
import hashlib
import hmac
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from server import audit, db, users
from server.config import Config, ConfigError, ConsultSettings, IceSettings, ServerSettings, load_config
from server.passwords import Passwords
from signaling.turn import turn_credentials
from tests.conftest import TEST_AUTH, Api, app_config, start_api

PATIENT = {
    "age": 58, "sex": "male", "chief_complaint": "nyeri dada kiri sejak 2 jam",
    "question": "Apakah ini STEMI? Perlu rujuk segera?",
    "vitals": {"systolic_bp": 150, "diastolic_bp": 95, "heart_rate": 108, "spo2": 94},
}
OUTCOME = {
    "soap": {"subjective": "nyeri dada tipikal", "objective": "EKG: ST elevasi V1-V4",
             "assessment": "STEMI anterior", "plan": "aspirin 320 mg, rujuk untuk PCI"},
    "decision": "refer",
    "referral": {"hospital": "rs-rsu-kota-tangsel", "icd10": "I21.9", "reason": "STEMI anterior, perlu ICU dan rujuk lanjut untuk PCI",
                 "urgency": "emergency", "service": "icu", "transport": False},
}
TURN_SECRET = "test-turn-secret"


def consult_config(dsn: str, var_dir: Path, **consult: Any) -> Config:
    base = app_config(dsn)
    return dataclasses.replace(
        base,
        server=ServerSettings(var_dir=str(var_dir)),
        consult=ConsultSettings(**consult),
        ice=IceSettings(stun_urls=("stun:127.0.0.1:3478",), turn_urls=("turn:127.0.0.1:3478?transport=udp",), turn_secret=TURN_SECRET),
    )


@pytest.fixture
async def capi(demo_dsn: str, tmp_path: Path) -> AsyncIterator[Api]:
    client = await start_api(demo_dsn, consult_config(demo_dsn, tmp_path))
    yield client
    await close_api(client)


async def close_api(client: Api) -> None:
    await client.session.close()
    await client.server.close()


async def add_users(
    dsn: str, prefix: str, count: int, role: str = "specialist", specialties: tuple[str, ...] = ("jantung",), facility: str | None = None,
) -> list[str]:
    con = await db.connect(dsn)
    try:
        names = []
        for n in range(count):
            name = f"{prefix}{n}"
            await users.add_user(
                con, Passwords(TEST_AUTH), actor=audit.CLI, username=name, role=role, password="demo119x",
                min_password_length=8, specialties=specialties if role == "specialist" else (), facility=facility,
            )
            names.append(name)
        return names
    finally:
        await con.close()


async def request_consult(api: Api, token: str, key: str | None = None, **fields: Any) -> tuple[int, Any]:
    body = {"idempotency_key": key or uuid.uuid4().hex, "service": "tele_ekg", "specialty": "jantung",
            "urgency": "emergency", "patient": PATIENT, **fields}
    return await api.call("POST", "/api/consults", token, json=body)


async def accepted_consult(api: Api) -> tuple[str, str, str]:
    """A consult requested by 'puskesmas' and accepted by 'specialist': (id, puskesmas token, specialist token)."""
    pk, sp = await api.login("puskesmas"), await api.login("specialist")
    status, body = await request_consult(api, pk)
    assert status == 201, body
    consult_id = body["consult"]["id"]
    status, body = await api.call("POST", f"/api/consults/{consult_id}/accept", sp)
    assert status == 200, body
    return consult_id, pk, sp


async def test_request_is_idempotent_and_validated(capi: Api) -> None:
    pk = await capi.login("puskesmas")
    status, first = await request_consult(capi, pk, key="retry-key-0001")
    assert status == 201, first
    consult = first["consult"]
    assert consult["state"] == "requested" and consult["overdue"] is False
    assert consult["patient"]["vitals"]["spo2"] == 94
    respond_by = dt.datetime.fromisoformat(consult["respond_by"])
    requested = dt.datetime.fromisoformat(consult["requested_at"])
    assert respond_by - requested == dt.timedelta(minutes=10)  # emergency default
    status, again = await request_consult(capi, pk, key="retry-key-0001")
    assert status == 200 and again["consult"]["id"] == consult["id"]
    # The same key for a different request is a conflict, not a silent second consult.
    status, body = await request_consult(capi, pk, key="retry-key-0001", urgency="routine")
    assert status == 409 and body["error"]["field"] == "idempotency_key"
    for fields, field in (
        ({"specialty": "astrologi"}, "specialty"),
        ({"service": "telepathy"}, "service"),
        ({"urgency": "soon"}, "urgency"),
        ({"patient": {**PATIENT, "age": 200}}, "patient.age"),
        ({"patient": {**PATIENT, "vitals": {"spo2": 9}}}, "patient.vitals.spo2"),
        ({"patient": {**PATIENT, "name": "Budi"}}, "patient.name"),
        ({"extra": 1}, "extra"),
    ):
        status, body = await request_consult(capi, pk, **fields)
        assert status == 422 and body["error"]["field"] == field, (fields, body)
    _, listing = await capi.call("GET", "/api/consults", pk)
    assert [c["id"] for c in listing["consults"]] == [consult["id"]]  # nothing else was stored


async def capi_names(api: Api, consult: dict[str, Any]) -> tuple[str, str, str]:
    """The requester's and specialist's display names and the facility's name, read from the database."""
    con = await db.connect(api.dsn)
    try:
        requester = await con.fetchval("SELECT display_name FROM users WHERE id = $1", consult["requester"])
        specialist = await con.fetchval("SELECT display_name FROM users WHERE id = $1", consult["specialist"])
        facility = await con.fetchval("SELECT name FROM facilities WHERE code = $1", consult["facility"])
    finally:
        await con.close()
    assert requester and specialist and facility
    return requester, specialist, facility


async def test_whole_store_and_forward_consult_and_the_audit_of_reads(capi: Api) -> None:
    pk, sp, admin = await capi.login("puskesmas"), await capi.login("specialist"), await capi.login("admin")
    status, body = await capi.call("PUT", "/api/oncall", sp, json={"specialty": "jantung", "on_call": True})
    assert status == 200 and [e["specialty"] for e in body["on_call"]] == ["jantung"]
    status, body = await capi.call("PUT", "/api/oncall", sp, json={"specialty": "mata", "on_call": True})
    assert status == 422 and body["error"]["field"] == "specialty"  # not one of this specialist's
    _, roster = await capi.call("GET", "/api/oncall", admin)
    assert [(e["username"], e["specialty"]) for e in roster["on_call"]] == [("specialist", "jantung")]

    _, routine = await request_consult(capi, pk, urgency="routine")
    _, emergency = await request_consult(capi, pk, urgency="emergency")
    _, other = await request_consult(capi, pk, specialty="mata")
    consult_id = emergency["consult"]["id"]
    # The specialist's queue: its specialties only, most urgent first.
    status, queue = await capi.call("GET", "/api/consults?state=requested", sp)
    assert status == 200, queue
    assert [c["id"] for c in queue["consults"]] == [consult_id, routine["consult"]["id"]]
    assert other["consult"]["id"] not in {c["id"] for c in queue["consults"]}
    # A waiting request is read from the queue before it is accepted (the read is audited); an operator may not read it.
    status, body = await capi.call("GET", f"/api/consults/{consult_id}", sp)
    assert status == 200 and body["consult"]["patient"]["question"] == PATIENT["question"]
    status, _ = await capi.call("GET", f"/api/consults/{consult_id}", await capi.login("operator"))
    assert status == 403

    status, body = await capi.call("POST", f"/api/consults/{consult_id}/decline", sp)
    assert status == 200
    _, queue = await capi.call("GET", "/api/consults", sp)
    mine = {c["id"]: c for c in queue["consults"]}
    assert mine[consult_id]["declined_by_me"] is True and mine[consult_id]["state"] == "requested"

    status, body = await capi.call("POST", f"/api/consults/{consult_id}/accept", sp)
    assert status == 200 and body["consult"]["state"] == "accepted"
    # The consult says who is on each end, by the names the database holds.
    accepted = body["consult"]
    names = await capi_names(capi, accepted)
    assert (accepted["requester_name"], accepted["specialist_name"], accepted["facility_name"]) == names
    status, body = await capi.call("POST", f"/api/consults/{consult_id}/accept", sp)
    assert status == 409
    status, body = await capi.call("POST", f"/api/consults/{other['consult']['id']}/accept", sp)
    assert status == 403  # not a mata specialist

    # Store-and-forward: no video, a written answer straight from accepted.
    bad = {**OUTCOME, "referral": None}
    status, body = await capi.call("POST", f"/api/consults/{consult_id}/complete", sp, json={"outcome": bad})
    assert status == 422 and body["error"]["field"] == "outcome.referral"
    status, body = await capi.call("POST", f"/api/consults/{consult_id}/complete", pk, json={"outcome": OUTCOME})
    assert status == 403  # a puskesmas doctor cannot complete
    status, body = await capi.call("POST", f"/api/consults/{consult_id}/complete", sp, json={"outcome": OUTCOME})
    assert status == 200, body
    assert body["consult"]["state"] == "completed" and body["consult"]["outcome"]["referral"] == OUTCOME["referral"]
    status, _ = await capi.call("POST", f"/api/consults/{consult_id}/cancel", pk)
    assert status == 409  # completed is terminal

    status, seen = await capi.call("GET", f"/api/consults/{consult_id}", pk)
    assert status == 200 and seen["consult"]["outcome"]["soap"]["assessment"] == "STEMI anterior"
    status, _ = await capi.call("GET", f"/api/consults/{consult_id}", admin)
    assert status == 200
    _, log = await capi.call("GET", f"/api/audit?action=consult.read&object=consult:{consult_id}", admin)
    assert sorted(e["username"] for e in log["entries"]) == ["admin", "puskesmas", "specialist"]
    _, log = await capi.call("GET", "/api/audit?action=consult.list", admin)
    assert {e["username"] for e in log["entries"]} == {"specialist"}
    _, log = await capi.call("GET", f"/api/audit?object=consult:{consult_id}", admin)
    actions = {e["action"] for e in log["entries"]}
    assert {"consult.request", "consult.declined", "consult.accepted", "consult.completed"} <= actions


async def test_ten_specialists_accept_at_once_and_exactly_one_wins(capi: Api) -> None:
    names = await add_users(capi.dsn, "jantung", 10)
    tokens = [await capi.login(n, "demo119x") for n in names]
    pk = await capi.login("puskesmas")
    _, body = await request_consult(capi, pk)
    consult_id = body["consult"]["id"]
    results = await asyncio.gather(*(capi.call("POST", f"/api/consults/{consult_id}/accept", t) for t in tokens))
    statuses = sorted(s for s, _ in results)
    assert statuses == [200] + [409] * 9, results
    winner = next(b for s, b in results if s == 200)["consult"]["specialist"]
    _, seen = await capi.call("GET", f"/api/consults/{consult_id}", pk)
    assert seen["consult"]["specialist"] == winner and seen["consult"]["state"] == "accepted"


async def test_cancel_by_the_requester_only_and_membership_rules(capi: Api) -> None:
    await add_users(capi.dsn, "pkm", 1, role="puskesmas", facility=await _facility(capi))
    pk, other_pk, sp = await capi.login("puskesmas"), await capi.login("pkm0", "demo119x"), await capi.login("specialist")
    _, body = await request_consult(capi, pk)
    consult_id = body["consult"]["id"]
    status, _ = await capi.call("POST", f"/api/consults/{consult_id}/cancel", other_pk, json={"reason": "bukan saya"})
    assert status == 403
    status, _ = await capi.call("GET", f"/api/consults/{consult_id}", other_pk)
    assert status == 200  # a colleague at the same puskesmas reads it (the handover), but does not change it
    status, _ = await capi.call("GET", f"/api/consults/{uuid.uuid4()}", pk)
    assert status == 404
    status, _ = await capi.call("POST", f"/api/consults/{consult_id}/join", pk)
    assert status == 409  # no room before a specialist accepted
    status, body = await capi.call("POST", f"/api/consults/{consult_id}/cancel", pk, json={"reason": "pasien membaik"})
    assert status == 200 and body["consult"]["state"] == "cancelled" and body["consult"]["cancel_reason"] == "pasien membaik"
    status, _ = await capi.call("POST", f"/api/consults/{consult_id}/accept", sp)
    assert status == 409


async def _facility(api: Api) -> str:
    _, me = await api.call("GET", "/api/me", await api.login("puskesmas"))
    return str(me["facility_code"])


async def test_ice_servers_carry_turn_credentials_a_turn_server_can_verify(capi: Api) -> None:
    sp = await capi.login("specialist")
    status, body = await capi.call("GET", "/api/ice-servers", sp)
    assert status == 200
    stun, turn = body["ice_servers"]
    assert stun == {"urls": ["stun:127.0.0.1:3478"]}
    expiry, user = turn["username"].split(":")
    _, me = await capi.call("GET", "/api/me", sp)
    assert user == str(me["id"])
    # What coturn's use-auth-secret recomputes: base64(HMAC-SHA1(secret, username)).
    expected = base64.b64encode(hmac.new(TURN_SECRET.encode(), turn["username"].encode(), hashlib.sha1).digest()).decode()
    assert turn["credential"] == expected
    expires = dt.datetime.fromtimestamp(int(expiry), dt.UTC)
    again = turn_credentials(TURN_SECRET, user, expires - dt.timedelta(seconds=21600))
    assert again.credential == turn["credential"]
    assert dt.timedelta(hours=5, minutes=59) < expires - dt.datetime.now(dt.UTC) <= dt.timedelta(hours=6)
    status, _ = await capi.call("GET", "/api/ice-servers", await capi.login("operator"))
    assert status == 403


async def test_join_gives_members_a_token_and_the_room_url(capi: Api) -> None:
    consult_id, pk, sp = await accepted_consult(capi)
    status, body = await capi.call("POST", f"/api/consults/{consult_id}/join", pk)
    assert status == 200, body
    assert body["room_url"] == f"/ws/consults/{consult_id}" and len(body["token"]) == 43
    assert [s["urls"][0].split(":")[0] for s in body["ice_servers"]] == ["stun", "turn"]
    await add_users(capi.dsn, "lain", 1)
    status, body = await capi.call("POST", f"/api/consults/{consult_id}/join", await capi.login("lain0", "demo119x"))
    assert status == 403
    # Only the digest is stored.
    con = await db.connect(capi.dsn)
    try:
        digests = await con.fetch("SELECT member, digest FROM consult_grants WHERE consult_id = $1", uuid.UUID(consult_id))
    finally:
        await con.close()
    assert len(digests) == 1 and len(digests[0]["digest"]) == 32


async def test_config_deadlines_apply(demo_dsn: str, tmp_path: Path) -> None:
    client = await start_api(demo_dsn, consult_config(demo_dsn, tmp_path, urgent_respond_s=120.0, urgent_expire_s=240.0))
    try:
        _, body = await request_consult(client, await client.login("puskesmas"), urgency="urgent")
        c = body["consult"]
        requested = dt.datetime.fromisoformat(c["requested_at"])
        assert dt.datetime.fromisoformat(c["respond_by"]) - requested == dt.timedelta(seconds=120)
        assert dt.datetime.fromisoformat(c["expires_at"]) - requested == dt.timedelta(seconds=240)
    finally:
        await close_api(client)


@pytest.mark.parametrize(
    "text,key",
    [
        ('[ice]\nturn_urls = ["turn:turn.example.org:3478"]\n', "ice.turn_secret"),
        ('[ice]\nstun_urls = ["http://stun.example.org"]\n', "ice.stun_urls"),
        ("[ice]\nturn_ttl_s = 0\n", "ice.turn_ttl_s"),
        ("[consult]\nurgent_expire_s = 5.0\n", "consult.urgent_expire_s"),
        ("[consult]\nattachment_types = []\n", "consult.attachment_types"),
        ('[consult]\nattachment_types = ["Image/PNG"]\n', "consult.attachment_types"),
    ],
)
def test_consult_and_ice_settings_are_checked(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path, {})
    assert info.value.key == key


def test_ice_urls_can_come_from_the_environment() -> None:
    config = load_config(None, {"PSC119_ICE_STUN_URLS": "stun:a.example.org:3478, stun:b.example.org"})
    assert config.ice.stun_urls == ("stun:a.example.org:3478", "stun:b.example.org")
