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

    def cte(self, first: int) -> str:
        """The entry as a ``WITH`` item of another statement whose parameters from ``$first`` on are `values`:
        written in that statement's round trip, in its transaction."""
        return cte(first)


def cte(first: int, after: str | None = None) -> str:
    """`Entry.cte`; ``after``: another ``WITH`` item's name, the entry is written only if that one has a row
    (the change it records was made)."""
    params = _params(first, len(COLUMNS.split(",")))
    if after is None:
        return f"audited AS (INSERT INTO audit_log ({COLUMNS}) VALUES ({params}))"
    return f"audited AS (INSERT INTO audit_log ({COLUMNS}) SELECT {params} FROM {after})"


def _params(first: int, count: int) -> str:
    return ", ".join(f"${n}" for n in range(first, first + count))


async def record(
    con: asyncpg.Connection | asyncpg.Pool,
    actor: Actor,
    action: str,
    obj: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    entry = Entry(actor, action, obj, detail)
    await con.execute(f"INSERT INTO audit_log ({COLUMNS}) VALUES ({_params(1, 7)})", *entry.values())
