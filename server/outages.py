"""Background loops that outlive a database outage.

A loop that reaches the database logs an outage twice: once when it starts
("database unreachable; retrying") and once when it ends, never a traceback per
round, so the log says when the database was gone rather than how often the loop
looked. Any other failure is a bug and keeps its traceback. Which exceptions mean
"unreachable" is decided in one place, `server.errors.database_unreachable`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from server.errors import database_unreachable


class OutageLog:
    """The log lines of one loop: an outage when it starts and when it ends, other failures in full."""

    def __init__(self, log: logging.Logger, what: str) -> None:
        self._log = log
        self._what = what
        self.down = False

    def failed(self, exc: BaseException) -> None:
        if not database_unreachable(exc):
            self._log.error("%s failed", self._what, exc_info=exc)
        elif not self.down:
            self.down = True
            self._log.warning("%s: database unreachable (%s); retrying", self._what, type(exc).__name__)

    def succeeded(self) -> None:
        if self.down:
            self.down = False
            self._log.warning("%s: database reachable again", self._what)


async def every(interval_s: float, step: Callable[[], Awaitable[None]], outage: OutageLog) -> None:
    """Run ``step`` now and then every ``interval_s`` seconds, whatever it raises, until cancelled."""
    while True:
        try:
            await step()
        except Exception as exc:
            outage.failed(exc)
        else:
            outage.succeeded()
        await asyncio.sleep(interval_s)
