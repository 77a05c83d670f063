"""Chat from many rooms at once is stored in shared transactions, and each message reaches the other doctor only
once it is stored: nothing relayed is missing from the record, nothing is stored twice."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import websockets

from server import consult_chat, db
from server.config import DatabaseSettings
from signaling.ids import UserId
from tests.server.test_consult_room import CANDIDATE, recv
from tests.server.test_consults import close_api
from tests.server.test_socket_flood import room, room_api_with

ROOMS = 6
EACH = 5  # chats each doctor sends, all at once


async def test_chat_from_many_rooms_at_once_shares_transactions_and_is_stored_before_it_is_relayed(
    demo_dsn: str, tmp_path: Path, con: asyncpg.Connection,
) -> None:
    api = await room_api_with(demo_dsn, tmp_path, ws_chat_per_s=1000.0, ws_chat_burst=1000)
    try:
        rooms = [await room(api) for _ in range(ROOMS)]
        reading = asyncio.Lock()  # one test connection, many readers

        async def stored(text: str) -> int:
            async with reading:
                count: int = await con.fetchval("SELECT count(*) FROM consult_chat WHERE text = $1", text)
                return count

        async def talk(consult_id: str, sender: websockets.ClientConnection, receiver: websockets.ClientConnection,
                       who: str) -> list[str]:
            texts = [f"{who} {consult_id[:8]} {n}" for n in range(EACH)]
            await asyncio.gather(*(sender.send(json.dumps({"type": "chat", "id": uuid.uuid4().hex, "text": text})) for text in texts))
            seen = []
            for _ in texts:
                seen.append((await recv(receiver, "chat"))["text"])
                # Relayed only once committed: what the other doctor sees is in the record already.
                assert await stored(seen[-1]) == 1
            assert seen == texts  # in the order sent
            return seen

        await asyncio.gather(*(talk(cid, a, b, who) for cid, pk, sp in rooms
                               for a, b, who in ((pk, sp, "pk"), (sp, pk, "sp"))))
        ids = [uuid.UUID(cid) for cid, _pk, _sp in rooms]
        total = await con.fetchval("SELECT count(*) FROM consult_chat WHERE consult_id = ANY($1)", ids)
        audited = await con.fetchval(
            "SELECT count(*) FROM audit_log WHERE action = 'consult.chat' AND object = ANY($1)", [f"consult:{i}" for i in ids])
        # Each row's xmin is the transaction that wrote it: one a message would be one commit (and WAL flush) each.
        transactions = await con.fetchval("SELECT count(DISTINCT xmin::text) FROM consult_chat WHERE consult_id = ANY($1)", ids)
        assert total == audited == ROOMS * 2 * EACH
        assert transactions <= total // 3, transactions
    finally:
        await close_api(api)


async def test_a_stopped_writer_refuses_chat_instead_of_leaving_its_sender_waiting(demo_dsn: str) -> None:
    pool = await db.create_pool(demo_dsn, DatabaseSettings(url=demo_dsn, pool_min=1, pool_max=2))
    try:
        writer = consult_chat.ChatWriter(pool, max_stored=10)
        running = asyncio.create_task(writer.run())
        await asyncio.sleep(0)
        # A message waiting when the server stops is refused, not left hanging, and so is one sent after.
        waiting = writer.submit(str(uuid.uuid4()), UserId("1"), "m1", "halo", None)
        await asyncio.sleep(0)
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
        with pytest.raises(consult_chat.NotStored, match="not stored"):
            await asyncio.wait_for(waiting, 5)
        with pytest.raises(consult_chat.NotStored, match="not stored"):
            await writer.submit(str(uuid.uuid4()), UserId("1"), "m1", "halo", None)
    finally:
        await pool.close()


BURST_ROOMS = 12
BURST = 25  # chats each doctor sends without waiting for any to arrive


async def test_chat_bursts_from_many_rooms_are_relayed_in_order_and_stored_once_in_the_order_sent(
    demo_dsn: str, tmp_path: Path, con: asyncpg.Connection,
) -> None:
    """Each doctor's burst is read on while its chats commit (they share transactions rather than one commit
    each), yet every chat the other doctor sees is stored exactly once, and each sender's chats are relayed and
    stored (by id) in the order sent."""
    api = await room_api_with(demo_dsn, tmp_path, ws_chat_per_s=1000.0, ws_chat_burst=1000)
    try:
        rooms = [await room(api) for _ in range(BURST_ROOMS)]

        async def burst(sender: websockets.ClientConnection, who: str) -> list[str]:
            ids = [f"{who.replace(' ', '-')}-{n}" for n in range(BURST)]
            for n, chat_id in enumerate(ids):
                await sender.send(json.dumps({"type": "chat", "id": chat_id, "text": f"{who} {n}"}))
            return ids

        async def read(ws: websockets.ClientConnection) -> tuple[list[str], list[str]]:
            """(the other's chats, the answers to its own) once it has all of both."""
            texts: list[str] = []
            stored: list[str] = []
            while len(texts) < BURST or len(stored) < BURST:
                message = await recv(ws)
                if message["type"] == "chat":
                    texts.append(message["text"])
                elif message["type"] == "chat_stored":
                    stored.append(message["id"])
            return texts, stored

        async def both_ways(cid: str, pk: websockets.ClientConnection, sp: websockets.ClientConnection) -> None:
            pk_ids, sp_ids, (pk_seen, pk_answered), (sp_seen, sp_answered) = await asyncio.gather(
                burst(pk, f"pk {cid[:8]}"), burst(sp, f"sp {cid[:8]}"), read(pk), read(sp))
            # The other's chats, all of them in the order sent; and each of its own answered as stored, in order.
            assert (sp_seen, pk_seen) == ([f"pk {cid[:8]} {n}" for n in range(BURST)], [f"sp {cid[:8]} {n}" for n in range(BURST)])
            assert (pk_answered, sp_answered) == (pk_ids, sp_ids)

        await asyncio.gather(*(both_ways(cid, pk, sp) for cid, pk, sp in rooms))
        senders = [(cid, f"{who} {cid[:8]}") for cid, _pk, _sp in rooms for who in ("pk", "sp")]
        for cid, who in senders:
            rows = await con.fetch("SELECT text, xmin::text AS tx FROM consult_chat WHERE consult_id = $1 AND text LIKE $2 ORDER BY id",
                                   uuid.UUID(cid), f"{who} %")
            assert [r["text"] for r in rows] == [f"{who} {n}" for n in range(BURST)]  # once each, in the order sent
            # One sender's burst shares commits: a chat waiting for the one before it to commit would be one each.
            assert len({r["tx"] for r in rows}) <= BURST // 2, who
        ids = [uuid.UUID(cid) for cid, _pk, _sp in rooms]
        audited = await con.fetchval(
            "SELECT count(*) FROM audit_log WHERE action = 'consult.chat' AND object = ANY($1)", [f"consult:{i}" for i in ids])
        assert audited == BURST_ROOMS * 2 * BURST
    finally:
        await close_api(api)


FAULT_ROOMS = 4
FAULT_EACH = 6


async def test_a_batch_whose_database_connection_is_killed_stores_none_of_it_and_its_senders_are_told(
    demo_dsn: str, tmp_path: Path, con: asyncpg.Connection,
) -> None:
    """The writer's connection is killed while its batch waits inside the transaction: every chat of that batch
    gets ``chat_not_stored`` and none of it is stored (nor audited); every chat the other doctor saw is stored;
    the sockets stay open and the next chats are stored."""
    api = await room_api_with(demo_dsn, tmp_path, ws_chat_per_s=1000.0, ws_chat_burst=1000)
    blocker = await db.connect(demo_dsn)
    try:
        rooms = [await room(api) for _ in range(FAULT_ROOMS)]
        # The first room's consult row is held, so the batch holding its chat waits inside its transaction.
        blocking = blocker.transaction()
        await blocking.start()
        await blocker.execute("SELECT 1 FROM consults WHERE id = $1 FOR UPDATE", uuid.UUID(rooms[0][0]))
        sent = {cid: [f"fault {cid[:8]} {n}" for n in range(FAULT_EACH)] for cid, _pk, _sp in rooms}
        for n in range(FAULT_EACH):
            for cid, pk, _sp in rooms:
                await pk.send(json.dumps({"type": "chat", "id": uuid.uuid4().hex, "text": sent[cid][n]}))
        waiting = None
        for _ in range(100):
            waiting = await con.fetchval("""SELECT pid FROM pg_stat_activity
                                            WHERE wait_event_type = 'Lock' AND query LIKE '%FOR NO KEY UPDATE%'""")
            if waiting is not None:
                break
            await asyncio.sleep(0.05)
        assert waiting is not None, "no chat batch waited on the held consult"
        assert await con.fetchval("SELECT pg_terminate_backend($1)", waiting)
        await blocking.rollback()

        async def outcomes(pk: websockets.ClientConnection, sp: websockets.ClientConnection, texts: list[str]
                           ) -> tuple[list[str], list[str]]:
            """(the texts the specialist saw, the errors the sender got) until each chat has had its outcome."""
            relayed: list[str] = []
            errors: list[str] = []

            async def see() -> None:
                while True:
                    relayed.append((await recv(sp, "chat"))["text"])

            async def told() -> None:
                while True:
                    reply = await recv(pk, "error")
                    assert (reply["code"], reply["field"]) == ("chat_not_stored", "text"), reply
                    errors.append(reply["message"])

            readers = [asyncio.create_task(see()), asyncio.create_task(told())]
            try:
                async with asyncio.timeout(10):
                    while len(relayed) + len(errors) < len(texts):
                        done = [r for r in readers if r.done()]
                        if done:
                            done[0].result()  # a reader's failure, at once
                        await asyncio.sleep(0.02)
            finally:
                for reader in readers:
                    reader.cancel()
                await asyncio.gather(*readers, return_exceptions=True)
            return relayed, errors

        results = await asyncio.gather(*(outcomes(pk, sp, sent[cid]) for cid, pk, sp in rooms))
        refused = 0
        for (cid, _pk, _sp), (relayed, errors) in zip(rooms, results, strict=True):
            stored = [r["text"] for r in await con.fetch(
                "SELECT text FROM consult_chat WHERE consult_id = $1 ORDER BY id", uuid.UUID(cid))]
            audited = await con.fetchval("SELECT count(*) FROM audit_log WHERE action = 'consult.chat' AND object = $1",
                                         f"consult:{cid}")
            assert len(relayed) + len(errors) == FAULT_EACH
            assert stored == relayed  # what was seen is stored, in order; what was refused is not
            assert audited == len(stored)
            assert relayed == [t for t in sent[cid] if t in relayed]
            refused += len(errors)
        assert refused >= 1  # the killed batch's chats
        # The writer goes on with a new connection; the sockets stayed open.
        for cid, pk, sp in rooms:
            await pk.send(json.dumps({"type": "chat", "id": uuid.uuid4().hex, "text": f"after {cid[:8]}"}))
            assert (await recv(sp, "chat"))["text"] == f"after {cid[:8]}"
    finally:
        await blocker.close()
        await close_api(api)


async def test_a_message_sent_after_a_chat_is_relayed_after_it(demo_dsn: str, tmp_path: Path) -> None:
    """A socket reads on while its chats commit, but whatever it sends next waits for them: the other doctor
    gets the chat, then the candidate, as sent."""
    api = await room_api_with(demo_dsn, tmp_path, ws_chat_per_s=1000.0, ws_chat_burst=1000)
    try:
        _consult_id, pk, sp = await room(api)
        for n in range(5):
            await pk.send(json.dumps({"type": "chat", "id": uuid.uuid4().hex, "text": f"sebelum {n}"}))
            await pk.send(json.dumps({"type": "candidate", "candidate": CANDIDATE, "sdpMid": "0", "sdpMLineIndex": 0}))
        seen: list[dict[str, Any]] = []
        while len(seen) < 10:
            message = await recv(sp)
            if message["type"] in ("chat", "candidate"):
                seen.append(message)
        assert [(m["type"], m.get("text")) for m in seen] == [
            kind for n in range(5) for kind in (("chat", f"sebelum {n}"), ("candidate", None))]
    finally:
        await close_api(api)
