"""The pool gives connections back without a reset round trip, and still leaves nothing held behind."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from server import db
from server.config import DatabaseSettings

LOCK = 7_119_001


async def last_query(dsn: str, pid: int) -> str:
    observer = await asyncpg.connect(dsn)
    try:
        return str(await observer.fetchval("SELECT query FROM pg_stat_activity WHERE pid = $1", pid))
    finally:
        await observer.close()


@pytest.fixture
async def pool(empty_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    """The server's pool, of one connection: what one borrower leaves, the next one gets."""
    pool = await db.create_pool(empty_dsn, DatabaseSettings(pool_min=1, pool_max=1))
    yield pool
    await pool.close()


async def test_a_connection_goes_back_to_the_pool_without_a_reset_query(pool: asyncpg.Pool, empty_dsn: str) -> None:
    async with pool.acquire() as con:
        pid = con.get_server_pid()
        await con.fetchval("SELECT 119 AS last_statement")
    # What the server saw last from that connection is the work itself: nothing was sent on release.
    assert await last_query(empty_dsn, pid) == "SELECT 119 AS last_statement"


async def test_a_transaction_left_open_is_rolled_back_on_release(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as con:
        await con.execute("CREATE TABLE left_open (n int)")
        transaction = con.transaction()
        await transaction.start()
        await con.execute("INSERT INTO left_open VALUES (1)")
    async with pool.acquire() as con:
        assert not con.is_in_transaction()
        assert await con.fetchval("SELECT count(*) FROM left_open") == 0


async def test_a_session_lock_taken_through_session_scoped_never_outlives_the_work(pool: asyncpg.Pool, empty_dsn: str) -> None:
    other = await asyncpg.connect(empty_dsn)
    try:
        with pytest.raises(RuntimeError):
            async with db.session_scoped(pool) as con:
                await con.execute("SELECT pg_advisory_lock($1)", LOCK)
                raise RuntimeError("failed before its unlock")
        # Back in the pool (of one: the same connection), the lock is not held by it any more.
        async with pool.acquire() as con:
            assert await con.fetchval("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()") == 0
        assert await other.fetchval("SELECT pg_try_advisory_lock($1)", LOCK)
    finally:
        await other.close()
