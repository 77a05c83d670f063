"""A bounded, ranked queue in front of the password-hashing threads.

At most ``slots`` checks run at once and at most ``queue`` wait. A waiter with a
lower rank goes first (equal ranks in arrival order). When the queue is full, the
worst of the queue and the newcomer is refused at once with :class:`HashingBusy`,
so a flood of suspect attempts can neither pile up nor keep a clean one waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator

from server.errors import TooManyRequests


class HashingBusy(TooManyRequests):
    def __init__(self) -> None:
        super().__init__("too many logins at once; try again in a moment", retry_after_s=1)


class HashSlots:
    def __init__(self, slots: int, queue: int) -> None:
        self._free = slots
        self._queue = queue
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._arrivals = itertools.count()

    @contextlib.asynccontextmanager
    async def slot(self, rank: int) -> AsyncIterator[None]:
        """Hold one of the slots; the lower ``rank``, the earlier among waiters."""
        await self._acquire(rank)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, rank: int) -> None:
        if self._free > 0 and not self._waiting:
            self._free -= 1
            return
        entry = (rank, next(self._arrivals), asyncio.get_running_loop().create_future())
        self._drop_cancelled()
        if len(self._waiting) >= self._queue:
            worst = max(self._waiting, default=None, key=lambda w: w[:2])
            if worst is None or worst[:2] < entry[:2]:
                raise HashingBusy()
            self._waiting.remove(worst)
            worst[2].set_exception(HashingBusy())
        self._waiting.append(entry)
        try:
            await entry[2]
        except asyncio.CancelledError:
            if entry in self._waiting:
                self._waiting.remove(entry)
            elif entry[2].done() and not entry[2].cancelled() and entry[2].exception() is None:
                self._release()  # the slot was handed over as we were cancelled: pass it on
            raise

    def _release(self) -> None:
        self._drop_cancelled()
        if self._waiting:
            best = min(self._waiting, key=lambda w: w[:2])
            self._waiting.remove(best)
            best[2].set_result(None)
        else:
            self._free += 1

    def _drop_cancelled(self) -> None:
        # A waiter cancelled a moment ago has not run its own clean-up yet: it holds no place.
        self._waiting = [w for w in self._waiting if not w[2].done()]
