"""What the garbage collector walks: only objects younger than its last collection.

CPython promotes what survives its young collections and, every few seconds under load, walks every tracked object
in a full collection while the process serves nothing. At 2,000 unit sockets that is ~300,000 objects (start-up's
~110,000, a socket's ~100) and 100-200 ms; the young collections behind it walk each socket's in-flight objects (a
receive coroutine, a fix, the fleet index's entry: alive until the next fix) again and again, 5-15 ms each. Under
steady load these collections find no cyclic garbage at all: what a request or a fix leaves dies by reference
counting. So what exists once serving starts, and whatever survives a collection from then on, is frozen: each
collection walks only what was made since the previous one, and a frozen object that dies is still freed by
reference counting.

Frozen objects in reference cycles are never collected, though, and nearly all of those come from closed
websockets: a socket that lived long enough to be frozen leaves ~110 small-object blocks in cycles when it closes
(measured: 1,000 operator sockets opened, frozen and closed left 113,000 blocks that only a full collection freed;
1,000 closed HTTP connections left 2,500). So the frozen set is thawed and collected once when the closed sockets'
garbage, estimated from their count, has reached a quarter of the memory in small objects at its last collection
(the ratio CPython itself waits for before a full collection), or whatever the cause when that memory has doubled.
Memory that grows because sockets open (phones connecting at a shift's start: ~160 blocks each, all alive) no
longer sets off a full walk that finds nothing. Memory is what is counted, not the frozen set: counting that
walks it, 10 ms at 400,000 objects.
"""

from __future__ import annotations

import asyncio
import gc
import sys
from collections.abc import Callable
from typing import Any

GARBAGE_SHARE = 0.25  # the closed sockets' estimated garbage, as a share of memory, at which the frozen set is collected
SOCKET_GARBAGE = 110  # small-object blocks a closed websocket leaves in reference cycles
GROWTH = 2.0  # the growth of memory since the frozen set's last collection at which it is collected whatever the cause
LOOK_EVERY = 100  # collections between two looks at memory (~8 s under load): a look walks the arenas, ~0.5 ms


class FreezeSurvivors:
    """A ``gc.callbacks`` entry freezing what each collection leaves, and thawing for one full collection on
    ``loop`` when the websockets closed since (``sockets_closed``, a running count) have left a quarter of memory
    in garbage, or memory has grown by `GROWTH`."""

    __slots__ = ("_closed_at", "_collected_at", "_collections", "_loop", "_sockets_closed", "_thawing")

    def __init__(self, loop: asyncio.AbstractEventLoop, sockets_closed: Callable[[], int]) -> None:
        self._loop = loop
        self._sockets_closed = sockets_closed
        self._collected_at = sys.getallocatedblocks()
        self._closed_at = sockets_closed()
        self._collections = 0
        self._thawing = False

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase != "stop" or self._thawing:
            return
        gc.freeze()  # which also zeroes every generation's count: from now on, only young collections happen
        self._collections += 1
        if self._collections % LOOK_EVERY == 0 and self._garbage_enough():
            self._thawing = True
            # not here: a collection started from a collection's callback does nothing, and one runs on whichever
            # thread allocated
            self._loop.call_soon_threadsafe(self.thaw)

    def _garbage_enough(self) -> bool:
        closed_garbage = (self._sockets_closed() - self._closed_at) * SOCKET_GARBAGE
        return closed_garbage >= self._collected_at * GARBAGE_SHARE or sys.getallocatedblocks() >= self._collected_at * GROWTH

    def thaw(self) -> None:
        """Collect the frozen set once, and freeze what it leaves."""
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        self._collected_at = sys.getallocatedblocks()
        self._closed_at = self._sockets_closed()
        self._thawing = False

    def remove(self) -> None:
        """Back to CPython's own policy, the frozen set thawed."""
        gc.callbacks.remove(self)
        gc.unfreeze()


def install(loop: asyncio.AbstractEventLoop, sockets_closed: Callable[[], int]) -> FreezeSurvivors:
    """Freeze what exists now (start-up's objects), and from now on what survives each collection; ``sockets_closed``
    counts the process's websockets closed so far."""
    gc.freeze()
    policy = FreezeSurvivors(loop, sockets_closed)
    gc.callbacks.append(policy)
    return policy
