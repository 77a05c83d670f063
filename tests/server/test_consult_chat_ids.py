"""Each chat carries its sender's id for it: sent again (its answer lost with the socket, or uncertain because the
connection died during the COMMIT), it is stored once, answered as stored, and the other doctor gets it once."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import websockets

from server import db
from server.consult_chat import OutcomeUnknown
from server.keys import ROOMS
from signaling.errors import InvalidMessage
from signaling.ids import UserId
from tests.conftest import Api
from tests.server.database_support import own_database
from tests.server.test_consult_room import recv
from tests.server.test_consults import accepted_consult, close_api
from tests.server.test_socket_flood import room, room_api_with

# With a synchronous standby named that never connects, a transaction committing with synchronous_commit = on has
# written and flushed its commit record, then waits for that standby: the chat's transaction alone asks for it
# (every other commit is local), so terminating its backend there loses the COMMIT's answer, not the commit.
_WAIT_FOR_A_STANDBY_AT_CHAT_COMMITS = """
CREATE FUNCTION chat_commit_waits() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('synchronous_commit', 'on', true);
    RETURN NULL;
END $$;
CREATE TRIGGER chat_commit_waits AFTER INSERT ON consult_chat FOR EACH STATEMENT EXECUTE FUNCTION chat_commit_waits();
"""


async def _standby_that_never_comes(dsn: str) -> None:
    con = await db.connect(dsn)
    try:
        # The trigger first: once the standby is named, a commit in a backend that has not read the reload yet
        # (it reads it between statements) would wait for it forever.
        await con.execute(_WAIT_FOR_A_STANDBY_AT_CHAT_COMMITS)
        await con.execute("ALTER SYSTEM SET synchronous_commit = 'local'")
        await con.execute("ALTER SYSTEM SET synchronous_standby_names = 'never_connects'")
        await con.execute("SELECT pg_reload_conf()")
    finally:
        await con.close()
    # The reload is asynchronous: a backend forked before the postmaster has read it would still commit with
    # synchronous_commit = on, and wait for the standby forever. New backends fork with the postmaster's settings.
    async with asyncio.timeout(10):
        while True:
            fresh = await db.connect(dsn)
            try:
                if await fresh.fetchval("SELECT current_setting('synchronous_commit') = 'local'"):
                    return
            finally:
                await fresh.close()
            await asyncio.sleep(0.02)


async def _terminate_the_committing_backend(con: asyncpg.Connection) -> None:
    """Terminate the backend of the chat's transaction once it has committed and waits for the standby."""
    async with asyncio.timeout(10):
        while (pid := await con.fetchval("SELECT pid FROM pg_stat_activity WHERE wait_event = 'SyncRep'")) is None:
            await asyncio.sleep(0.02)
    assert await con.fetchval("SELECT pg_terminate_backend($1)", pid)


async def _chats_until(ws: websockets.ClientConnection, last_text: str) -> list[dict[str, Any]]:
    """The chats ``ws`` receives, up to and with the one of ``last_text`` (a sender's chats arrive in order)."""
    chats = []
    while not chats or chats[-1]["text"] != last_text:
        chats.append(await recv(ws, "chat"))
    return chats


@contextlib.asynccontextmanager
async def _commits_that_lose_their_answer(tmp_path: Path) -> AsyncIterator[tuple[Api, asyncpg.Connection]]:
    """A server whose chat commits wait for a standby that never comes, and an admin connection to its database."""
    async with own_database() as (_embedded, dsn):
        await _standby_that_never_comes(dsn)
        api = await room_api_with(dsn, tmp_path)
        admin = await db.connect(dsn)
        try:
            yield api, admin
        finally:
            await admin.close()
            await close_api(api)


async def test_a_chat_whose_commit_answer_is_lost_is_answered_unknown_and_its_resend_is_stored_and_seen_once(
    tmp_path: Path,
) -> None:
    async with _commits_that_lose_their_answer(tmp_path) as (api, admin):
        consult_id, pk_ws, sp_ws = await room(api)
        chat = {"type": "chat", "id": "f3b6c1d2-6a0e-4c4e-9a51-0d7e2b9c8a11", "text": "TD 180/110, mohon saran"}
        await pk_ws.send(json.dumps(chat))
        await _terminate_the_committing_backend(admin)
        reply = await recv(pk_ws)
        # The message is stored: telling its sender "not stored" would be false, and a resend would store it twice.
        rows = await admin.fetch("SELECT client_id, text FROM consult_chat WHERE consult_id = $1", uuid.UUID(consult_id))
        assert [(r["client_id"], r["text"]) for r in rows] == [(chat["id"], chat["text"])]
        assert (reply["type"], reply["code"], reply["field"], reply["chat"]) == ("error", "chat_outcome_unknown", "id", chat["id"])

        await admin.execute("DROP TRIGGER chat_commit_waits ON consult_chat")  # the database is itself again
        await pk_ws.send(json.dumps(chat))  # sent again, with its id
        assert await recv(pk_ws) == {"type": "chat_stored", "id": chat["id"]}
        await pk_ws.send(json.dumps({"type": "chat", "id": "after-1", "text": "sesudahnya"}))
        assert await recv(pk_ws) == {"type": "chat_stored", "id": "after-1"}

        seen = await _chats_until(sp_ws, "sesudahnya")
        assert [(m["id"], m["text"]) for m in seen] == [(chat["id"], chat["text"]), ("after-1", "sesudahnya")]
        stored = await admin.fetch("SELECT client_id FROM consult_chat WHERE consult_id = $1 ORDER BY id", uuid.UUID(consult_id))
        assert [r["client_id"] for r in stored] == [chat["id"], "after-1"]
        audited = await admin.fetchval(
            "SELECT count(*) FROM audit_log WHERE action = 'consult.chat' AND object = $1", f"consult:{consult_id}")
        assert audited == 2
        await pk_ws.close()
        await sp_ws.close()


async def test_a_chat_sent_again_is_stored_once_and_answered_stored_and_its_id_cannot_carry_another_text(
    demo_dsn: str, tmp_path: Path, con: asyncpg.Connection,
) -> None:
    api = await room_api_with(demo_dsn, tmp_path, ws_chat_per_s=1000.0, ws_chat_burst=1000)
    try:
        consult_id, pk_ws, sp_ws = await room(api)
        chat = json.dumps({"type": "chat", "id": "k1", "text": "nadi 120"})
        await pk_ws.send(chat)
        assert await recv(pk_ws) == {"type": "chat_stored", "id": "k1"}
        # Again after its answer (as after a reconnect that missed it), and twice more without waiting (in one
        # transaction or two).
        for frame in (chat, chat, chat):
            await pk_ws.send(frame)
        await pk_ws.send(json.dumps({"type": "chat", "id": "k1", "text": "nadi 90"}))
        replies = [await recv(pk_ws) for _ in range(4)]
        assert replies[:3] == [{"type": "chat_stored", "id": "k1"}] * 3
        # An id names one message: another text under it is a client's bug, and is not stored.
        assert (replies[3]["code"], replies[3]["field"], replies[3]["chat"]) == ("invalid_message", "id", "k1")
        await pk_ws.send(json.dumps({"type": "chat", "id": "k2", "text": "x" * 2001}))
        reply = await recv(pk_ws)  # a refusal says which chat it refuses
        assert (reply["code"], reply["field"], reply["chat"]) == ("invalid_message", "text", "k2")
        rows = await con.fetch("SELECT client_id, text FROM consult_chat WHERE consult_id = $1", uuid.UUID(consult_id))
        assert [(r["client_id"], r["text"]) for r in rows] == [("k1", "nadi 120")]
        audited = await con.fetchval("SELECT count(*) FROM audit_log WHERE action = 'consult.chat' AND object = $1",
                                     f"consult:{consult_id}")
        assert audited == 1
        # Every copy relayed carries the sender's id: the other doctor's page shows one message per sender and id.
        await pk_ws.send(json.dumps({"type": "chat", "id": "k3", "text": "selesai"}))
        seen = await _chats_until(sp_ws, "selesai")
        assert {(m["from"], m["id"], m["text"]) for m in seen[:-1]} == {(seen[-1]["from"], "k1", "nadi 120")}
        status, history = await api.call("GET", f"/api/consults/{consult_id}/chat", await api.login("specialist"))
        assert status == 200
        assert [(m["client_id"], m["text"]) for m in history["messages"]] == [("k1", "nadi 120"), ("k3", "selesai")]
        await pk_ws.close()
        await sp_ws.close()
    finally:
        await close_api(api)


async def test_repeats_within_one_batch_share_the_first_ones_outcome(demo_dsn: str, tmp_path: Path, con: asyncpg.Connection) -> None:
    api = await room_api_with(demo_dsn, tmp_path)
    try:
        consult_id, _pk, _sp = await accepted_consult(api)
        specialist = UserId(str(await con.fetchval("SELECT id FROM users WHERE username = 'specialist'")))
        writer = api.server.app[ROOMS].chats
        # Submitted in one turn of the loop, so they wait for the writer together and share its next batch.
        sent = [("r1", "EKG sinus"), ("r1", "EKG sinus"), ("r2", "lanjut"), ("r1", "EKG lain")]
        outcomes = await asyncio.gather(*(writer.submit(consult_id, specialist, chat_id, text, None) for chat_id, text in sent),
                                        return_exceptions=True)
        rows = await con.fetch("SELECT id, client_id, text FROM consult_chat WHERE consult_id = $1 ORDER BY id", uuid.UUID(consult_id))
        assert [(r["client_id"], r["text"]) for r in rows] == [("r1", "EKG sinus"), ("r2", "lanjut")]
        assert outcomes[:3] == [rows[0]["id"], rows[0]["id"], rows[1]["id"]]
        assert isinstance(outcomes[3], InvalidMessage) and outcomes[3].field == "id"
        assert len({xmin for (xmin,) in await con.fetch(
            "SELECT xmin::text FROM consult_chat WHERE consult_id = $1", uuid.UUID(consult_id))}) == 1  # one batch
    finally:
        await close_api(api)


async def test_when_the_commit_answer_is_lost_only_the_messages_the_batch_stored_are_answered_unknown(tmp_path: Path) -> None:
    async with _commits_that_lose_their_answer(tmp_path) as (api, admin):
        consult_id, _pk, _sp = await accepted_consult(api)
        specialist = UserId(str(await admin.fetchval("SELECT id FROM users WHERE username = 'specialist'")))
        writer = api.server.app[ROOMS].chats
        # One batch: a message it stores, and one it refuses (its id already names another text).
        sent = [("s1", "EKG sinus"), ("s1", "EKG lain")]
        submitted = asyncio.gather(*(writer.submit(consult_id, specialist, chat_id, text, None) for chat_id, text in sent),
                                   return_exceptions=True)
        await _terminate_the_committing_backend(admin)
        stored, refused = await submitted
        assert isinstance(stored, OutcomeUnknown)
        # Refused before the COMMIT: not stored whatever became of it, and its sender is told why.
        assert isinstance(refused, InvalidMessage) and refused.field == "id"
        rows = await admin.fetch("SELECT client_id, text FROM consult_chat WHERE consult_id = $1", uuid.UUID(consult_id))
        assert [(r["client_id"], r["text"]) for r in rows] == [("s1", "EKG sinus")]
