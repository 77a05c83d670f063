"""Database connections that announce a transaction's events after it commits.

Every server process's event bus wakes on a NOTIFY. Sent inside the transaction that appends the
events, a NOTIFY takes PostgreSQL's single notification lock at commit and keeps it until the commit
has reached the disk, so every event-writing transaction in the system would wait for the one before
it. Here the outermost transaction of a connection remembers that it appended events and, once it has
committed, sends the NOTIFY as a statement of its own (no WAL flush to wait for). A NOTIFY that is never
sent (the process died between the two) costs the buses their poll interval, never an event.
"""

from __future__ import annotations

import logging
from types import TracebackType

import asyncpg
from asyncpg.transaction import Transaction

CHANNEL = "psc119_events"

log = logging.getLogger(__name__)


class AnnouncingConnection(asyncpg.Connection):  # type: ignore[misc]  # asyncpg is untyped
    _outermost: AnnouncingTransaction | None = None

    def transaction(self, *, isolation: str | None = None, readonly: bool = False, deferrable: bool = False) -> AnnouncingTransaction:
        return AnnouncingTransaction(self, super().transaction(isolation=isolation, readonly=readonly, deferrable=deferrable))

    def announce_after_commit(self) -> bool:
        """Whether the running transaction will NOTIFY the event channel once it has committed (it will from now on)."""
        if self._outermost is None:
            return False  # begun by hand (``BEGIN``): no commit to follow
        self._outermost.appended = True
        return True


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

    async def _ended(self, committed: bool) -> None:
        if not self._outermost:
            return
        self._con._outermost = None
        if committed and self.appended:
            try:
                await self._con.execute(f"NOTIFY {CHANNEL}")
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("committed events not announced (the buses find them at their next poll): %s", exc)

    async def start(self) -> None:
        nested = self._con.is_in_transaction()
        await self._transaction.start()
        self._began(nested)

    async def commit(self) -> None:
        await self._transaction.commit()
        await self._ended(True)

    async def rollback(self) -> None:
        await self._transaction.rollback()
        await self._ended(False)

    async def __aenter__(self) -> AnnouncingTransaction:
        nested = self._con.is_in_transaction()
        await self._transaction.__aenter__()
        self._began(nested)
        return self

    async def __aexit__(self, extype: type[BaseException] | None, ex: BaseException | None, tb: TracebackType | None) -> None:
        try:
            await self._transaction.__aexit__(extype, ex, tb)
        except BaseException:
            await self._ended(False)
            raise
        await self._ended(extype is None)
