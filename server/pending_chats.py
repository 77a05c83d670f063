"""A room socket's chats sent but not yet stored: their outcomes are acted on in the order they were sent.

The socket's reader hands a chat to the `server.consult_chat.ChatWriter` and reads on, so one sender's chats
share a batch instead of each waiting for the commit of the one before. What the room does with each chat
(relay it, or tell the sender why it was refused) waits for that chat's outcome and for every chat sent before
it. The reader lets at most ``LIMIT`` chats wait, and lets any other message through only once none waits, so
nothing a member sends overtakes an earlier chat.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

# Chats of one socket waiting for their commit at once (production allows a burst of 10, limits.ws_chat_burst).
LIMIT = 16

Outcome = Callable[["asyncio.Future[int]"], None]


class PendingChats:
    __slots__ = ("_waiting", "_settled")

    def __init__(self) -> None:
        # A list: at most LIMIT long, and every room socket holds one idle (an empty deque is over 600 bytes).
        self._waiting: list[tuple[asyncio.Future[int], Outcome]] = []
        self._settled: asyncio.Future[None] | None = None  # done when the oldest waiting chat's outcome is acted on

    def __len__(self) -> int:
        return len(self._waiting)

    def add(self, stored: asyncio.Future[int], then: Outcome) -> None:
        """``then(stored)`` once ``stored`` is done and every chat added before it has had its own."""
        self._waiting.append((stored, then))
        stored.add_done_callback(self._settle)

    async def wait_below(self, count: int) -> None:
        """Until fewer than ``count`` chats wait."""
        while len(self._waiting) >= count:
            if self._settled is None:
                self._settled = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._settled)

    def _settle(self, _done: asyncio.Future[int]) -> None:
        while self._waiting and self._waiting[0][0].done():
            stored, then = self._waiting.pop(0)
            try:
                then(stored)
            except Exception:  # one chat's failure to relay must not hold back the ones after it
                log.exception("acting on a stored chat failed")
        settled, self._settled = self._settled, None
        if settled is not None and not settled.done():
            settled.set_result(None)
