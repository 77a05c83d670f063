"""Chat from many rooms at once is stored in shared transactions, and each message reaches the other doctor only
once it is stored: nothing relayed is missing from the record, nothing is stored twice."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import asyncpg
import pytest
import websockets

from server import consult_chat, db
from server.config import DatabaseSettings
from signaling.ids import UserId
from tests.server.test_consult_room import recv
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
            await asyncio.gather(*(sender.send(json.dumps({"type": "chat", "text": text})) for text in texts))
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
        waiting = writer.submit(str(uuid.uuid4()), UserId("1"), "halo", None)
        await asyncio.sleep(0)
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
        with pytest.raises(consult_chat.NotStored, match="not stored"):
            await asyncio.wait_for(waiting, 5)
        with pytest.raises(consult_chat.NotStored, match="not stored"):
            await writer.submit(str(uuid.uuid4()), UserId("1"), "halo", None)
    finally:
        await pool.close()
