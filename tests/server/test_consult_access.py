"""Who reads which consult: the list, the detail, the attachments and the chat follow one rule, for the requesting
doctor, a colleague at the same puskesmas, a doctor at another one, the specialists and the admin; the list holds
no patient data, and every read of the detail says in the audit log why its reader could read it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from tests.conftest import Api, start_api
from tests.server.test_consult_files import PNG, _post
from tests.server.test_consults import add_users, close_api, consult_config, request_consult

PASSWORD = "demo119x"


@pytest.fixture
async def capi(demo_dsn: str, tmp_path: Path) -> AsyncIterator[Api]:
    client = await start_api(demo_dsn, consult_config(demo_dsn, tmp_path / "var"))
    yield client
    await close_api(client)


async def download(api: Api, token: str, consult_id: str, attachment_id: str) -> int:
    headers = {"Authorization": f"Bearer {token}"}
    async with api.session.get(api.url(f"/api/consults/{consult_id}/attachments/{attachment_id}"), headers=headers) as r:
        if r.status == 200:
            assert await r.read() == PNG
        return r.status


async def reads(api: Api, token: str, consult_id: str, attachment_id: str) -> tuple[bool, int, int, int]:
    """(listed, detail status, attachment status, chat status) for ``token``'s user."""
    status, listing = await api.call("GET", "/api/consults", token)
    assert status == 200, listing
    listed = consult_id in {c["id"] for c in listing["consults"]}
    detail, _ = await api.call("GET", f"/api/consults/{consult_id}", token)
    attachment = await download(api, token, consult_id, attachment_id)
    chat, _ = await api.call("GET", f"/api/consults/{consult_id}/chat", token)
    return listed, detail, attachment, chat


async def test_list_detail_attachments_and_chat_agree_for_every_reader(capi: Api, con: asyncpg.Connection) -> None:
    pk = await capi.login("puskesmas")
    _, me = await capi.call("GET", "/api/me", pk)
    other_pkm = await con.fetchval("SELECT code FROM facilities WHERE kind = 'puskesmas' AND code <> $1 ORDER BY code LIMIT 1", me["facility_code"])
    [colleague] = await add_users(capi.dsn, "rekan", 1, role="puskesmas", facility=me["facility_code"])
    [elsewhere] = await add_users(capi.dsn, "lain", 1, role="puskesmas", facility=other_pkm)
    [cardiologist] = await add_users(capi.dsn, "jantung", 1, specialties=("jantung",))
    [eye] = await add_users(capi.dsn, "mata", 1, specialties=("mata",))
    tokens = {name: await capi.login(name, PASSWORD) for name in (colleague, elsewhere, cardiologist, eye)}
    tokens |= {"puskesmas": pk, "specialist": await capi.login("specialist"), "admin": await capi.login("admin")}

    status, body = await request_consult(capi, pk)
    assert status == 201, body
    consult_id = body["consult"]["id"]
    status, body = await _post(capi, consult_id, pk, PNG, "image/png", "ekg.png")
    assert status == 201, body
    attachment_id = body["attachment"]["id"]

    def everyone(waiting: bool) -> dict[str, tuple[bool, int, int, int]]:
        yes, no = (True, 200, 200, 200), (False, 403, 403, 403)
        return {
            "puskesmas": yes, colleague: yes, elsewhere: no, eye: no, "admin": yes,
            # A waiting request is in the queue of every cardiologist; once accepted, it is its specialist's only.
            "specialist": yes, cardiologist: yes if waiting else no,
        }

    assert {name: await reads(capi, token, consult_id, attachment_id) for name, token in tokens.items()} == everyone(True)
    status, body = await capi.call("POST", f"/api/consults/{consult_id}/accept", tokens["specialist"])
    assert status == 200, body
    assert {name: await reads(capi, token, consult_id, attachment_id) for name, token in tokens.items()} == everyone(False)

    status, _ = await capi.call("GET", f"/api/consults/{uuid.uuid4()}", tokens[colleague])
    assert status == 404


async def test_a_colleague_reads_for_the_handover_but_changes_nothing_and_every_read_is_audited(capi: Api, con: asyncpg.Connection) -> None:
    pk = await capi.login("puskesmas")
    _, me = await capi.call("GET", "/api/me", pk)
    [colleague] = await add_users(capi.dsn, "rekan", 1, role="puskesmas", facility=me["facility_code"])
    mate = await capi.login(colleague, PASSWORD)
    status, body = await request_consult(capi, pk)
    consult_id = body["consult"]["id"]
    status, body = await _post(capi, consult_id, pk, PNG, "image/png", "ekg.png")
    attachment_id = body["attachment"]["id"]
    status, body = await capi.call("POST", f"/api/consults/{consult_id}/accept", await capi.login("specialist"))
    assert status == 200, body

    # The list says what the events say; the patient and the answer are read one consult at a time.
    _, listing = await capi.call("GET", "/api/consults", mate)
    [entry] = listing["consults"]
    assert entry["id"] == consult_id and entry["state"] == "accepted" and entry["requester_name"]
    assert not {"patient", "outcome", "cancel_reason"} & entry.keys()
    status, detail = await capi.call("GET", f"/api/consults/{consult_id}", mate)
    assert status == 200 and detail["consult"]["patient"]["chief_complaint"] == "nyeri dada kiri sejak 2 jam"
    assert [a["id"] for a in detail["consult"]["attachments"]] == [attachment_id]
    assert await download(capi, mate, consult_id, attachment_id) == 200

    # Reading is all: the room is its two doctors', cancelling and adding files the requester's.
    snapshot = "SELECT state, (SELECT count(*) FROM consult_attachments) AS files FROM consults WHERE id = $1"
    before = await con.fetchrow(snapshot, uuid.UUID(consult_id))
    status, _ = await capi.call("POST", f"/api/consults/{consult_id}/join", mate)
    assert status == 403
    status, _ = await capi.call("POST", f"/api/consults/{consult_id}/cancel", mate, json={})
    assert status == 403
    status, _ = await _post(capi, consult_id, mate, PNG, "image/png", "lain.png")
    assert status == 403
    assert await con.fetchrow(snapshot, uuid.UUID(consult_id)) == before

    status, _ = await capi.call("GET", f"/api/consults/{consult_id}", pk)
    assert status == 200
    rows = await con.fetch(
        "SELECT username, action, detail->>'as' AS reader FROM audit_log WHERE object = $1 AND action LIKE '%read' ORDER BY id",
        f"consult:{consult_id}",
    )
    assert [(r["username"], r["action"], r["reader"]) for r in rows] == [
        (colleague, "consult.read", "colleague"),
        (colleague, "consult.attachment.read", "colleague"),
        ("puskesmas", "consult.read", "requester"),
    ]
