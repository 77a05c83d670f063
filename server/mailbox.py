"""A bounded queue for one reader and a flag, as small as idle ones can be: what each live socket's subscription holds.

`asyncio.Queue` keeps three deques and an `asyncio.Event` from the start (about 3 KiB, before any item), and an
`asyncio.Event` a deque of its own; thousands of idle phone sockets each hold one of each. These hold nothing until
an item comes (or the flag is waited for), nothing again once the items are taken, and one future while their
reader waits. Same surface as the asyncio ones where the bus uses them: ``put_nowait`` (raising `asyncio.QueueFull`), ``get``, ``get_nowait`` (raising
`asyncio.QueueEmpty`), ``empty``; ``set``,
``is_set``, ``wait``.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Generic, TypeVar

T = TypeVar("T")


class Waking:
    """A single reader's wait for something to be put: one future while it waits, nothing otherwise."""

    __slots__ = ("_waiter",)

    def __init__(self) -> None:
        self._waiter: asyncio.Future[None] | None = None

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def _sleep(self) -> None:
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None


class Mailbox(Waking, Generic[T]):
    __slots__ = ("_items", "_maxsize")

    def __init__(self, maxsize: int) -> None:
        super().__init__()
        self._maxsize = maxsize
        self._items: collections.deque[T] | None = None  # made at the first item

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items) if self._items else 0

    def put_nowait(self, item: T) -> None:
        if self._items is None:
            self._items = collections.deque()
        elif len(self._items) >= self._maxsize:
            raise asyncio.QueueFull
        self._items.append(item)
        self._wake()

    def get_nowait(self) -> T:
        if not self._items:
            raise asyncio.QueueEmpty
        return self._taken(self._items)

    async def get(self) -> T:
        """The oldest item, waiting for one if there is none (one reader at a time)."""
        while not self._items:
            await self._sleep()
        return self._taken(self._items)

    def _taken(self, items: collections.deque[T]) -> T:
        """The oldest item; an emptied deque (over 600 bytes, whatever it held) is let go until the next item."""
        item = items.popleft()
        if not items:
            self._items = None
        return item


class Flag:
    """Set once, never cleared."""

    __slots__ = ("_set", "_waiter")

    def __init__(self) -> None:
        self._set = False
        self._waiter: asyncio.Future[None] | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def wait(self) -> None:
        if self._set:
            return
        if self._waiter is None:
            self._waiter = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._waiter)  # a cancelled waiter leaves the future for the others
