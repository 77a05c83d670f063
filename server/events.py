"""Appending to the durable event log, in commit order.

Sequence values are handed out before commit, so with a plain sequence a reader
resuming "after id N" could miss an N-1 that committed late. Here an append only
queues the event in its transaction; as the transaction commits, a deferred
trigger takes an advisory lock, numbers the queued events after the newest id and
moves them into the log. The lock is held from there to the end of the commit, so
ids become visible strictly in order and without gaps, and no writer waits for
another's statements, only for its commit. The NOTIFY carries only the newest id
(payloads are capped at 8000 bytes) and, being transactional, is delivered only if
the transaction commits. The steps are SQL (``append_event``, migration 0013), so
triggers append events the same way (a revoked session's ``session.revoked``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections.abc import Iterable
from typing import Any

import asyncpg

from server import db

CHANNEL = "psc119_events"


@dataclasses.dataclass(frozen=True)
class Event:
    id: int
    at: dt.datetime
    type: str
    audience: frozenset[str]
    payload: dict[str, Any]

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> Event:
        return cls(row["id"], row["at"], row["type"], frozenset(row["audience"]), row["payload"])

    def wire(self) -> dict[str, Any]:
        return {"type": "event", "id": self.id, "at": self.at.isoformat(), "event": self.type, "data": self.payload}

    @functools.cached_property
    def text(self) -> str:
        """The frame every socket sends, encoded once however many sockets it goes to."""
        return db.dumps(self.wire())


async def append(con: asyncpg.Connection, type: str, payload: dict[str, Any], audience: Iterable[str]) -> None:
    """Append an event inside the caller's transaction; it gets its id when the transaction commits."""
    if not con.is_in_transaction():
        raise RuntimeError("events.append must run inside the transaction that makes the change")
    await con.execute("SELECT append_event($1, $2, $3)", type, sorted(set(audience)), payload)


async def since(con: asyncpg.Connection | asyncpg.Pool, after: int, audience: Iterable[str], limit: int = 1000) -> list[Event]:
    rows = await con.fetch(
        "SELECT id, at, type, audience, payload FROM events WHERE id > $1 AND audience && $2 ORDER BY id LIMIT $3",
        after, list(audience), limit,
    )
    return [Event.from_row(r) for r in rows]


async def last_id(con: asyncpg.Connection | asyncpg.Pool) -> int:
    return int(await con.fetchval("SELECT coalesce(max(id), 0) FROM events"))
