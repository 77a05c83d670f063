"""What a join costs the room and the members: a fresh room is claimed and read, with the joining member's grant, in
one statement; a room being claimed holds up no other room; and the consult's move to ``in_session`` (a transaction
of its own) never holds up the signaling that follows the welcomes, nor runs beside it."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import uuid
from pathlib import Path

import asyncpg
import pytest

from server import db
from server.config import DatabaseSettings, ServerSettings
from server.keys import POOL, ROOMS
from server.room_owners import Nodes
from server.rooms import RECORDER, ROOM_STATE, SESSION_RECORD_AFTER_S, build
from tests.conftest import Api, start_api
from tests.server.test_consult_room import CANDIDATE, join, join_text, recv, refused, token_for
from tests.server.test_consults import accepted_consult, close_api, consult_config
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


async def test_the_session_start_is_written_after_the_first_exchange_with_the_moment_both_were_in(
    api: Api, con: asyncpg.Connection
) -> None:
    consult_id, pk, sp = await accepted_consult(api)
    pk_ws, _ = await join(api, consult_id, await token_for(api, consult_id, pk))
    sp_token = await token_for(api, consult_id, sp)
    before = dt.datetime.now(dt.UTC)
    sp_ws, _ = await join(api, consult_id, sp_token)  # both are in: the session starts
    after = dt.datetime.now(dt.UTC)
    for _ in range(100):
        row = await con.fetchrow(
            """SELECT c.started_at, e.at AS written FROM consults c
               JOIN events e ON e.type = 'consult.in_session' AND e.payload->>'id' = c.id::text WHERE c.id = $1""",
            uuid.UUID(consult_id),
        )
        if row is not None:
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the consult never went in session")
    assert before <= row["started_at"] <= after  # the moment both were in, not the moment it was written
    assert row["written"] - row["started_at"] >= dt.timedelta(seconds=SESSION_RECORD_AFTER_S)
    await pk_ws.close()
    await sp_ws.close()


async def logged_api(dsn: str, var_dir: Path, sent: list[str]) -> Api:
    """The app on a pool of two connections, each logging the statements it sends into ``sent``."""
    config = consult_config(dsn, var_dir)
    api = await start_api(dsn, dataclasses.replace(config, database=dataclasses.replace(config.database, pool_min=2, pool_max=2)))
    pool = api.server.app[POOL]
    held = [await pool.acquire() for _ in range(2)]
    for con in held:
        con.add_query_logger(lambda record: sent.append(record.query))
        await pool.release(con)
    return api


async def test_a_join_reads_its_grant_in_the_claim_of_a_fresh_room(demo_dsn: str, tmp_path: Path) -> None:
    sent: list[str] = []
    api = await logged_api(demo_dsn, tmp_path, sent)
    try:
        consult_id, pk, sp = await accepted_consult(api)
        pk_token, sp_token = await token_for(api, consult_id, pk), await token_for(api, consult_id, sp)
        sent.clear()
        pk_ws, _ = await join(api, consult_id, pk_token)  # the first member: the room is claimed and built
        grants = [q for q in sent if "consult_grants" in q]
        assert len(grants) == 1, grants  # the grant, the room and its claim in one statement
        assert "room_owners" in grants[0]
        sent.clear()
        sp_ws, _ = await join(api, consult_id, sp_token)  # the room is built: the grant alone
        grants = [q for q in sent if "consult_grants" in q]
        assert len(grants) == 1 and "room_owners" not in grants[0], grants
        await recv(pk_ws, "presence")
        await pk_ws.close()
        await sp_ws.close()
    finally:
        await close_api(api)


@pytest.mark.parametrize("refusal", ["unknown token", "signed out"])
async def test_a_refused_first_join_leaves_the_room_unclaimed(demo_dsn: str, tmp_path: Path, con: asyncpg.Connection, refusal: str) -> None:
    """The claim of a fresh room is taken in the statement that reads the grant: never for a grant refused."""
    api = await start_api(demo_dsn, consult_config(demo_dsn, tmp_path))
    try:
        consult_id, pk, sp = await accepted_consult(api)
        token = "A" * 43
        if refusal == "signed out":
            token = await token_for(api, consult_id, sp)
            assert (await api.call("POST", "/api/auth/logout", sp))[0] == 200
        error, code = await refused(api, consult_id, join_text(token))
        assert (error and error["code"], code) == ("token_rejected", 4401)
        assert await con.fetchval("SELECT count(*) FROM room_owners WHERE consult_id = $1", uuid.UUID(consult_id)) == 0
        assert api.server.app[ROOMS].loaded(consult_id) is None
        pk_ws, _ = await join(api, consult_id, await token_for(api, consult_id, pk))  # a member still gets in
        await pk_ws.close()
    finally:
        await close_api(api)


async def test_a_room_being_claimed_holds_up_no_other_room(demo_dsn: str, tmp_path: Path, con: asyncpg.Connection) -> None:
    api = await start_api(demo_dsn, consult_config(demo_dsn, tmp_path))
    try:
        slow_id, slow_pk, _ = await accepted_consult(api)
        other_id, other_pk, _ = await accepted_consult(api)
        slow_token, other_token = await token_for(api, slow_id, slow_pk), await token_for(api, other_id, other_pk)
        node = api.server.app[ROOMS].nodes.id
        held = con.transaction()
        await held.start()
        try:
            # A real wait: an uncommitted claim of the first room makes this process's claim of it wait on its row.
            await con.execute("INSERT INTO room_owners (consult_id, node, url) VALUES ($1, $2, 'http://127.0.0.1:1')",
                              uuid.UUID(slow_id), node)
            slow = asyncio.create_task(join(api, slow_id, slow_token))
            for _ in range(100):  # until the claim waits on that row
                await con.execute("SELECT pg_stat_clear_snapshot()")  # inside a transaction the activity view is read once
                if await con.fetchval("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%room_owners%'"):
                    break
                await asyncio.sleep(0.02)
            else:
                raise AssertionError("the first room's claim never waited")
            other_ws, _ = await asyncio.wait_for(join(api, other_id, other_token), 5)  # meanwhile, another room opens
            assert not slow.done()
        finally:
            await held.rollback()
        slow_ws, _ = await asyncio.wait_for(slow, 5)  # the claim goes through once the row is let go
        await slow_ws.close()
        await other_ws.close()
    finally:
        await close_api(api)
