"""Appending to the durable event log, and reading it without missing an event.

An append queues the event in its transaction; as the transaction commits, a deferred trigger numbers
the queued events from a sequence and moves them into the log. Nothing is locked through the commit,
so event-writing transactions do not wait for each other's commit flush; the price is that ids may
become visible out of order (10 can finish committing after 11) and a commit that fails after
numbering leaves a hole. So a reader never reads past an id that may still commit: the event bus
holds back what follows a missing id until the transactions numbering at that moment have ended
(``event_numberers``, migration 0015), and every other reader is bounded by the bus's ``last_id`` or
starts from ``last_id()`` here (``settled_event_id``; sockets opening at once share one read,
`EventBus.settled_id`). Holes are then skipped: resuming "after N" misses nothing. The buses are woken
by a NOTIFY that carries no data (payloads are capped at 8000 bytes: readers read the table), sent
after the commit (server/announcing.py). The steps are SQL (``append_event``), so triggers append
events the same way (a revoked session's ``session.revoked``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections.abc import Iterable
from typing import Any

import asyncpg

from server import announcing, audit, db
from server.statements import Params

CHANNEL = announcing.CHANNEL


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


def appended(con: asyncpg.Connection, type: str, payload: dict[str, Any], audience: Iterable[str], params: Params) -> str:
    """The event appended inside another statement of the caller's transaction (`append`'s, or one that also makes the
    change): the SQL call of ``append_event``, its values added to the statement's ``params``."""
    if not con.is_in_transaction():
        raise RuntimeError("events.append must run inside the transaction that makes the change")
    # A connection of ours NOTIFYs after its commit; any other gets the NOTIFY from the commit itself.
    announce = getattr(con, "announce_after_commit", None)
    announced = announce is not None and announce()
    return f"append_event({params.add_all((type, sorted(set(audience)), payload, announced))})"


async def append(
    con: asyncpg.Connection, type: str, payload: dict[str, Any], audience: Iterable[str], audited: audit.Entry | None = None,
) -> None:
    """Append an event inside the caller's transaction; it gets its id when the transaction commits.
    ``audited``: the change's audit entry, written in the same statement."""
    params = Params()
    event = appended(con, type, payload, audience, params)
    await con.execute(f"SELECT {event}" if audited is None else f"WITH {audited.cte(params)} SELECT {event}", *params.values)


async def since(con: asyncpg.Connection | asyncpg.Pool, after: int, audience: Iterable[str], limit: int = 1000) -> list[Event]:
    rows = await con.fetch(
        "SELECT id, at, type, audience, payload FROM events WHERE id > $1 AND audience && $2 ORDER BY id LIMIT $3",
        after, list(audience), limit,
    )
    return [Event.from_row(r) for r in rows]


async def last_id(con: asyncpg.Connection | asyncpg.Pool) -> int:
    """The newest id at or below which every event is settled: read after this, each is there or never will be.

    A starting point for reading on (``id > last_id``); take it before the snapshot you read with."""
    return int(await con.fetchval("SELECT settled_event_id()"))
