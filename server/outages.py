"""Background loops that outlive a database outage.

A loop that reaches the database logs an outage twice: once when it starts
("database unreachable; retrying") and once when it ends, never a traceback per
round, so the log says when the database was gone rather than how often the loop
looked. Any other failure is a bug and keeps its traceback. Which exceptions mean
"unreachable" is decided in one place, `server.errors.database_unreachable`. Every
round is also counted (`server.metrics`): a failed one as a failure, and as a database
error when it was one; a good one as the loop's last success.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import asyncpg

from server.errors import database_unreachable

if TYPE_CHECKING:
    from server.metrics import Metrics


class OutageLog:
    """The log lines of one loop: an outage when it starts and when it ends, other failures in full."""

    def __init__(self, log: logging.Logger, what: str, metrics: Metrics) -> None:
        self._log = log
        self._what = what
        self._metrics = metrics
        self.down = False

    def failed(self, exc: BaseException) -> None:
        self._metrics.sweep_failed(self._what)
        unreachable = database_unreachable(exc)
        if unreachable or isinstance(exc, asyncpg.PostgresError):
            self._metrics.database_error(self._what, unreachable)
        if not unreachable:
            self._log.error("%s failed", self._what, exc_info=exc)
        elif not self.down:
            self.down = True
            self._log.warning("%s: database unreachable (%s); retrying", self._what, type(exc).__name__)

    def succeeded(self) -> None:
        self._metrics.sweep_succeeded(self._what)
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
