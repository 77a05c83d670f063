"""Database connections that announce a transaction's events after it commits.

Every server process's event bus wakes on a NOTIFY. Sent inside the transaction that appends the
events, a NOTIFY takes PostgreSQL's single notification lock at commit and keeps it until the commit
has reached the disk, so every event-writing transaction in the system would wait for the one before
it. Here the outermost transaction of a connection remembers that it appended events and sends the
NOTIFY as a statement of its own after the ``COMMIT``, in the same round trip: ``COMMIT; NOTIFY ...`` as one
simple query runs the NOTIFY in a transaction of its own once the commit has ended (flush included), and
not at all if the commit fails; that transaction writes nothing, so it waits for no flush. A NOTIFY that
is never sent (the process died between the two) costs the buses their poll interval, never an event.
"""

from __future__ import annotations

import logging
from types import TracebackType

import asyncpg
from asyncpg.transaction import Transaction

CHANNEL = "psc119_events"
# What asyncpg sends to end an outermost transaction, and what this connection sends instead when it announces.
_COMMIT = "COMMIT;"
_ANNOUNCE = f"NOTIFY {CHANNEL}"
_COMMIT_AND_ANNOUNCE = f"COMMIT; {_ANNOUNCE}"
# The same NOTIFY in a read of its own: materialised and on the outer side of a join, so that it runs once, rows or none.
_ANNOUNCED = f"WITH announced AS MATERIALIZED (SELECT pg_notify('{CHANNEL}', ''))"

log = logging.getLogger(__name__)


class AnnouncingConnection(asyncpg.Connection):  # type: ignore[misc]  # asyncpg is untyped
    _outermost: AnnouncingTransaction | None = None
    _announce_at_commit = False

    def transaction(self, *, isolation: str | None = None, readonly: bool = False, deferrable: bool = False) -> AnnouncingTransaction:
        return AnnouncingTransaction(self, super().transaction(isolation=isolation, readonly=readonly, deferrable=deferrable))

    def announce_after_commit(self) -> bool:
        """Whether the running transaction will NOTIFY the event channel once it has committed (it will from now on)."""
        if self._outermost is None:
            return False  # begun by hand (``BEGIN``): no commit to follow
        self._outermost.appended = True
        return True

    async def execute(self, query: str, *args: object, timeout: float | None = None) -> str:
        if not (self._announce_at_commit and query == _COMMIT and not args):
            return str(await super().execute(query, *args, timeout=timeout))
        self._announce_at_commit = False
        return await self._announcing(_COMMIT_AND_ANNOUNCE, "COMMIT", timeout)

    async def announce(self) -> None:
        """NOTIFY the event channel now, after a statement outside any transaction that appended events as announced
        (a statement of its own commits as it ends)."""
        await self._announcing(_ANNOUNCE, "", None)

    async def fetch_announcing(self, query: str, *args: object, key: str) -> list[asyncpg.Record]:
        """The rows of ``query``, a read outside any transaction, run with the NOTIFY that `announce` would send:
        one round trip for both, after a statement that appended events as announced. The read's own transaction
        writes nothing, so its NOTIFY waits for no flush, as `announce`'s does. Column ``key`` of a row is never
        null (it tells the rows apart from the one row of nulls that stands for none)."""
        try:
            rows = await self.fetch(f"{_ANNOUNCED} SELECT q.* FROM announced LEFT JOIN LATERAL ({query}) AS q ON true", *args)
        except asyncpg.ProgramLimitExceededError as exc:
            if "NOTIFY" not in str(exc):
                raise
            _not_announced(exc)
            rows = await self.fetch(query, *args)
        return [row for row in rows if row[key] is not None]

    async def _announcing(self, query: str, committed: str, timeout: float | None) -> str:
        try:
            return str(await super().execute(query, timeout=timeout))
        except asyncpg.ProgramLimitExceededError as exc:
            if "NOTIFY" not in str(exc):
                raise
            _not_announced(exc)
            return committed


def _not_announced(exc: asyncpg.ProgramLimitExceededError) -> None:
    # The NOTIFY's own transaction found the notification queue full: what it announces had committed.
    log.warning("committed events not announced (the buses find them at their next poll): %s", exc)


class AnnouncingTransaction:
    """An asyncpg transaction (same use: ``async with``, or start/commit/rollback) that announces appended events."""

    def __init__(self, con: AnnouncingConnection, transaction: Transaction) -> None:
        self._con = con
        self._transaction = transaction
        self._outermost = False
        self.appended = False

    def _began(self, nested: bool) -> None:
        if not nested:
            self._outermost = True
            self._con._outermost = self

    def _ending(self, commit: bool) -> None:
        """Before the transaction ends: an outermost one that appended events announces them with its ``COMMIT``."""
        if self._outermost:
            self._con._outermost = None
            self._con._announce_at_commit = commit and self.appended

    def _ended(self) -> None:
        self._con._announce_at_commit = False  # unused if the COMMIT was never sent

    async def start(self) -> None:
        nested = self._con.is_in_transaction()
        await self._transaction.start()
        self._began(nested)

    async def commit(self) -> None:
        self._ending(True)
        try:
            await self._transaction.commit()
        finally:
            self._ended()

    async def rollback(self) -> None:
        self._ending(False)
        try:
            await self._transaction.rollback()
        finally:
            self._ended()

    async def __aenter__(self) -> AnnouncingTransaction:
        nested = self._con.is_in_transaction()
        await self._transaction.__aenter__()
        self._began(nested)
        return self

    async def __aexit__(self, extype: type[BaseException] | None, ex: BaseException | None, tb: TracebackType | None) -> None:
        self._ending(extype is None)
        try:
            await self._transaction.__aexit__(extype, ex, tb)
        finally:
            self._ended()
