"""The append-only audit log: who did or read what, when, from where."""

from __future__ import annotations

import dataclasses
from typing import Any

import asyncpg

from server.logs import request_id
from server.statements import Params


@dataclasses.dataclass(frozen=True, slots=True)
class Actor:
    user_id: int | None
    username: str
    address: str | None = None


CLI = Actor(user_id=None, username="cli")


COLUMNS = "user_id, username, action, object, detail, address, request_id"


@dataclasses.dataclass(frozen=True, slots=True)
class Entry:
    """One audit entry, to be written by `record` or inside another statement (`cte`)."""

    actor: Actor
    action: str
    obj: str | None = None
    detail: dict[str, Any] | None = None

    def values(self) -> tuple[Any, ...]:
        return (self.actor.user_id, self.actor.username, self.action, self.obj, self.detail or {}, self.actor.address, request_id.get())

    def cte(self, params: Params, after: str | None = None) -> str:
        """The entry as a ``WITH`` item of another statement, its values added to that statement's ``params``: written
        in that statement's round trip, in its transaction. ``after``: another ``WITH`` item's name, the entry is
        written only if that one has a row (the change it records was made)."""
        name = f"audited{len(params.values) + 1}"  # named by its first parameter: two entries in one statement never clash
        placeholders = params.add_all(self.values())
        if after is None:
            return f"{name} AS (INSERT INTO audit_log ({COLUMNS}) VALUES ({placeholders}))"
        return f"{name} AS (INSERT INTO audit_log ({COLUMNS}) SELECT {placeholders} FROM {after})"


async def record(
    con: asyncpg.Connection | asyncpg.Pool,
    actor: Actor,
    action: str,
    obj: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    params = Params()
    await con.execute(f"INSERT INTO audit_log ({COLUMNS}) VALUES ({params.add_all(Entry(actor, action, obj, detail).values())})", *params.values)
