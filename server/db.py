"""The asyncpg pool, and making sure the configured database exists.

A connection returns to the pool without the reset query asyncpg sends by default (advisory
unlocks, CLOSE ALL, UNLISTEN, RESET ALL): one more round trip on every release, for session
state that pool users never leave. What they can leave is still undone: an open transaction
is rolled back (asyncpg does that before any reset), and work that takes session-level state
(an advisory lock held across transactions) borrows its connection through `session_scoped`,
which resets it fully before giving it back.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from server.announcing import AnnouncingConnection
from server.config import DatabaseSettings


def _json_default(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} as JSON")


def dumps(value: Any) -> str:
    return json.dumps(value, default=_json_default, ensure_ascii=False)


# asyncpg has codecs for no array type but text[] and oid[]: it reads any other from the catalog, once a connection,
# in the first statement that takes or returns it, with a query that costs PostgreSQL 20-25 ms (three round trips
# where it has JIT). That was a request's time, for each new connection and type, and all at once when a burst
# opened the pool's connections. The array types the server's statements use are read here, in one query, as a
# pool connection opens (`tests/server/test_round_trips.py` runs a call's life on a new one and sees no other read);
# a connection of its own (`connect`: the bus's, a command's) reads only what it uses, so its set-up sends nothing
# that a process stopping as it starts could cancel half-way (asyncpg closes a pool connection whose set-up fails).
ARRAY_TYPES = ("uuid[]", "bigint[]", "int[]", "real[]", "float8[]", "bool[]", "timestamptz[]", "record[]")  # (a room's rows)
_LEARN_ARRAYS = "SELECT " + ", ".join(f"NULL::{kind}" for kind in ARRAY_TYPES)


async def _init_connection(con: asyncpg.Connection) -> None:
    for kind in ("json", "jsonb"):
        await con.set_type_codec(kind, encoder=dumps, decoder=json.loads, schema="pg_catalog")


async def _init_pool_connection(con: asyncpg.Connection) -> None:
    await _init_connection(con)
    await con.fetchrow(_LEARN_ARRAYS)


async def create_pool(dsn: str, settings: DatabaseSettings) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        dsn,
        min_size=settings.pool_min,
        max_size=settings.pool_max,
        command_timeout=settings.command_timeout_s,
        init=_init_pool_connection,
        connection_class=AnnouncingConnection,
        reset=_keep_session,
    )
    assert pool is not None
    return pool


async def _keep_session(_con: asyncpg.Connection) -> None:
    """The pool's reset on release: nothing to send (see the module's note)."""


@contextlib.asynccontextmanager
async def session_scoped(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """A pool connection for work that takes session-level state (a session advisory lock): reset in full
    before it goes back, so no lock outlives the work even if its own unlock never ran; a connection
    that cannot be reset is closed, which releases everything it held."""
    async with pool.acquire() as con:
        try:
            yield con
        finally:
            try:
                await con.reset()
            except BaseException:
                con.terminate()
                raise


async def connect(dsn: str, name: str | None = None, settings: Mapping[str, str] | None = None) -> asyncpg.Connection:
    """A connection outside the pool; ``name`` shows as its application_name in pg_stat_activity; ``settings``: the
    session's own (for a connection that runs a few statements of its own, such as the event bus's)."""
    server_settings = {**(settings or {}), **({"application_name": name} if name else {})}
    con = await asyncpg.connect(dsn, server_settings=server_settings or None, connection_class=AnnouncingConnection)
    await _init_connection(con)
    return con


async def ensure_database(dsn: str) -> None:
    """Create the DSN's database through the server's ``postgres`` database if it is missing."""
    parts = urlsplit(dsn)
    dbname = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    con = await asyncpg.connect(admin)
    try:
        if not await con.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", dbname):
            try:
                await con.execute(f'CREATE DATABASE "{dbname}"')
            except asyncpg.DuplicateDatabaseError:
                pass  # another process created it in between
    finally:
        await con.close()
