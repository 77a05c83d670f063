"""Opaque session tokens: random, stored only as a SHA-256, expiring, revocable.

Revoking a session (here, or by a trigger when its user is disabled or changes role, unit, facility or
specialties: migration 0006) commits a ``session.revoked`` event naming the session's number, which every
server process follows to close the session's sockets (`server.revocation`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import secrets

import asyncpg

from server.users import COLUMNS, User


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def create(con: asyncpg.Connection, user_id: int, ttl: dt.timedelta, address: str | None) -> tuple[str, dt.datetime]:
    token = secrets.token_urlsafe(32)
    expires = await con.fetchval(
        "INSERT INTO sessions (token_hash, user_id, expires_at, address) VALUES ($1, $2, now() + $3, $4) RETURNING expires_at",
        _digest(token), user_id, ttl, address,
    )
    return token, expires


@dataclasses.dataclass(frozen=True, slots=True)
class Session:
    """A live session: its number (never the token), whose it is, and when it ends."""

    id: int
    user: User
    expires_at: dt.datetime


LIVE = "s.revoked_at IS NULL AND s.expires_at > now() AND u.disabled_at IS NULL"


async def resolve(con: asyncpg.Connection | asyncpg.Pool, token: str) -> Session | None:
    """The live session behind a token, or None if it is unknown, expired, revoked or its user disabled."""
    if not token or len(token) > 200:
        return None
    columns = ", ".join(f"u.{c.strip()}" for c in COLUMNS.split(","))
    row = await con.fetchrow(
        f"""SELECT s.id AS session_id, s.expires_at AS session_expires_at, {columns}
            FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1 AND {LIVE}""",
        _digest(token),
    )
    return None if row is None else Session(row["session_id"], User.from_row(row), row["session_expires_at"])


def live_sql(session: str) -> str:
    """Whether the session numbered ``session`` (an SQL expression) is still live: a column of a statement that
    reads more (one primary-key read)."""
    return f"EXISTS (SELECT 1 FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = {session} AND {LIVE})"


async def is_live(con: asyncpg.Connection | asyncpg.Pool, session_id: int) -> bool:
    """Whether a session is still live (for the actions that change state)."""
    return bool(await con.fetchval(f"SELECT {live_sql('$1')}", session_id))


async def revoke(con: asyncpg.Connection | asyncpg.Pool, token: str) -> bool:
    status: str = await con.execute(
        "UPDATE sessions SET revoked_at = now() WHERE token_hash = $1 AND revoked_at IS NULL", _digest(token)
    )
    return status != "UPDATE 0"
