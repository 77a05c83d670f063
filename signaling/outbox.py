"""A short per-member queue for messages relayed while the member is away.

Bounded twice: at most ``limit`` messages (the oldest is dropped to make room)
and none older than ``max_age`` when drained. It bridges a websocket that drops
for a few seconds while the RTCPeerConnection survives; it is not a mailbox.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from . import _check
from .errors import InvalidValue

__all__ = ["DEFAULT_LIMIT", "DEFAULT_MAX_AGE", "Outbox"]

DEFAULT_LIMIT = 64
DEFAULT_MAX_AGE = timedelta(seconds=30)

T = TypeVar("T")


class Outbox(Generic[T]):
    def __init__(self, limit: int = DEFAULT_LIMIT, max_age: timedelta = DEFAULT_MAX_AGE) -> None:
        _check.integer(limit, "outbox_limit", 1, 10_000)
        if max_age <= timedelta(0):
            raise InvalidValue("outbox_max_age", "must be positive")
        self.limit = limit
        self.max_age = max_age
        self._items: deque[tuple[datetime, T]] = deque()
        #: How many messages were dropped, for full or for stale, since creation.
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: T, now: datetime) -> None:
        _check.aware(now, "now")
        self.prune(now)
        if len(self._items) >= self.limit:
            self._items.popleft()
            self.dropped += 1
        self._items.append((now, item))

    def prune(self, now: datetime) -> None:
        """Drop what is older than ``max_age`` at ``now``."""
        while self._items and now - self._items[0][0] > self.max_age:
            self._items.popleft()
            self.dropped += 1

    def discard(self, stale: Callable[[T], bool]) -> int:
        """Drop the queued items ``stale`` picks out; return how many."""
        kept = deque((at, item) for at, item in self._items if not stale(item))
        gone = len(self._items) - len(kept)
        self._items = kept
        return gone

    def drain(self, now: datetime) -> Sequence[T]:
        """Everything still fresh at ``now``, oldest first; the outbox is then empty."""
        _check.aware(now, "now")
        self.prune(now)
        items = [item for _, item in self._items]
        self._items.clear()
        return items

    def clear(self) -> None:
        self._items.clear()
