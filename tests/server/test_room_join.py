"""What a join costs the room and the members: a fresh room is claimed and read in one statement, and the consult's
move to ``in_session`` (a transaction of its own) never holds up the signaling that follows the welcomes."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import asyncpg

from server import db
from server.config import DatabaseSettings, ServerSettings
from server.room_owners import Nodes
from server.rooms import RECORDER, ROOM_STATE, build
from tests.conftest import Api
from tests.server.test_consult_room import CANDIDATE, join, recv, token_for
from tests.server.test_consults import accepted_consult, close_api
from tests.server.test_socket_flood import room_api_with


async def test_a_fresh_room_is_claimed_and_read_in_one_statement(api: Api, demo_dsn: str) -> None:
    warm_up, _, _ = await accepted_consult(api)
    consult_id, pk, sp = await accepted_consult(api)
    for session in (pk, sp):
        await token_for(api, consult_id, session)
    pool = await db.create_pool(demo_dsn, DatabaseSettings(pool_min=1, pool_max=1))
    sent: list[str] = []
    try:
        async with pool.acquire() as con:
            con.add_query_logger(lambda record: sent.append(record.query))
        nodes = Nodes(pool, ServerSettings())
        await nodes.beat()
        await nodes.claim(warm_up, "http://127.0.0.1:1", ROOM_STATE)  # asyncpg reads the row types once a connection
        sent.clear()
        owner, row = await nodes.claim(consult_id, "http://127.0.0.1:1", ROOM_STATE)
        assert len(sent) == 1, sent  # the claim and everything the room is built from
        assert owner is None
        live = build(row)
        assert live.room.consult_id == consult_id and RECORDER not in live.room.members
        assert len(live.room.members) == 2  # both doctors' stored grants
        assert await pool.fetchval("SELECT node FROM room_owners WHERE consult_id = $1", uuid.UUID(consult_id)) == nodes.id
        await nodes.leave()
    finally:
        await pool.close()


async def test_signaling_flows_while_the_session_start_waits_on_the_database(demo_dsn: str, tmp_path: Path, con: asyncpg.Connection) -> None:
    api = await room_api_with(demo_dsn, tmp_path)
    try:
        consult_id, pk, sp = await accepted_consult(api)
        pk_ws, _ = await join(api, consult_id, await token_for(api, consult_id, pk))
        sp_token = await token_for(api, consult_id, sp)
        async with con.transaction():
            # A real wait: the consult's row is locked, so the move to in_session cannot commit meanwhile.
            await con.execute("SELECT 1 FROM consults WHERE id = $1 FOR UPDATE", uuid.UUID(consult_id))
            sp_ws, _ = await join(api, consult_id, sp_token)  # both are in: the session starts
            await sp_ws.send(json.dumps({"type": "candidate", "candidate": CANDIDATE, "sdpMid": "0", "sdpMLineIndex": 0}))
            assert (await recv(pk_ws, "candidate"))["candidate"] == CANDIDATE
            await pk_ws.send(json.dumps({"type": "candidate", "candidate": CANDIDATE, "sdpMid": "0", "sdpMLineIndex": 0}))
            assert (await recv(sp_ws, "candidate"))["candidate"] == CANDIDATE
            assert await con.fetchval("SELECT state FROM consults WHERE id = $1", uuid.UUID(consult_id)) == "accepted"
        for _ in range(100):  # the lock is gone: the start commits
            if await con.fetchval("SELECT state FROM consults WHERE id = $1", uuid.UUID(consult_id)) == "in_session":
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the consult never went in session")
        await pk_ws.close()
        await sp_ws.close()
    finally:
        await close_api(api)
