"""The active triage table, read once and kept until a change to it is seen.

Every call, dispatch and acknowledgement sweep needs the table; reading and checking it
each time cost a query and its validation per request. The cache drops the table when
a ``triage.updated`` event reaches this process's bus (an admin's change on any process),
and at once when this process made the change, so the next reader loads it fresh.
"""

from __future__ import annotations

import asyncpg

from dispatch.triage import TriageTable
from server import incidents
from server.events import Event

EVENT = "triage.updated"


class TriageCache:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._table: TriageTable | None = None
        self._generation = 0  # bumped by every change, so a load that raced one is not kept

    def seen(self, event: Event) -> None:
        """A bus hook: a change to the table, from any process, drops the cached one."""
        if event.type == EVENT:
            self.changed()

    def changed(self) -> None:
        self._table = None
        self._generation += 1

    async def get(self) -> TriageTable:
        if self._table is not None:
            return self._table
        generation = self._generation
        table = await incidents.load_triage(self._pool)
        if generation == self._generation:
            self._table = table
        return table
