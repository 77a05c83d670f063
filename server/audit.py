"""The append-only audit log: who did or read what, when, from where."""

from __future__ import annotations

import dataclasses
from typing import Any

import asyncpg

from server.logs import request_id


@dataclasses.dataclass(frozen=True, slots=True)
class Actor:
    user_id: int | None
    username: str
    address: str | None = None


CLI = Actor(user_id=None, username="cli")


async def record(
    con: asyncpg.Connection | asyncpg.Pool,
    actor: Actor,
    action: str,
    obj: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    await con.execute(
        """INSERT INTO audit_log (user_id, username, action, object, detail, address, request_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7)""",
        actor.user_id, actor.username, action, obj, detail or {}, actor.address, request_id.get(),
    )
