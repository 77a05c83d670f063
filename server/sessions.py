"""Opaque session tokens: random, stored only as a SHA-256, expiring, revocable."""

from __future__ import annotations

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


async def resolve(con: asyncpg.Connection | asyncpg.Pool, token: str) -> User | None:
    """The active user behind a token, or None if it is unknown, expired, revoked or its user disabled."""
    if not token or len(token) > 200:
        return None
    columns = ", ".join(f"u.{c.strip()}" for c in COLUMNS.split(","))
    row = await con.fetchrow(
        f"""SELECT {columns} FROM sessions s JOIN users u ON u.id = s.user_id
            WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > now()
              AND u.disabled_at IS NULL""",
        _digest(token),
    )
    return None if row is None else User.from_row(row)


async def revoke(con: asyncpg.Connection | asyncpg.Pool, token: str) -> bool:
    status: str = await con.execute(
        "UPDATE sessions SET revoked_at = now() WHERE token_hash = $1 AND revoked_at IS NULL", _digest(token)
    )
    return status != "UPDATE 0"
