"""What the garbage collector walks: only objects younger than its last collection.

CPython promotes what survives its young collections and, every few seconds under load, walks every tracked object
in a full collection while the process serves nothing. At 2,000 unit sockets that is ~300,000 objects (start-up's
~110,000, a socket's ~100) and 100-200 ms; the young collections behind it walk each socket's in-flight objects (a
receive coroutine, a fix, the fleet index's entry: alive until the next fix) again and again, 5-15 ms each. Under
steady load these collections find no cyclic garbage at all: what a request or a fix leaves dies by reference
counting. So what exists once serving starts, and whatever survives a collection from then on, is frozen: each
collection walks only what was made since the previous one, and a frozen object that dies is still freed by
reference counting.

Frozen objects in reference cycles are never collected, though (a closed socket leaves ~50). So when the memory
in small objects has grown by a quarter since the frozen set was last collected (the ratio CPython itself waits
for before a full collection), it is thawed and collected once: garbage held frozen stays under a quarter of what
was in use. Memory is what is counted, not the frozen set: counting that walks it, 10 ms at 400,000 objects.
"""

from __future__ import annotations

import asyncio
import gc
import sys
from typing import Any

GROWTH = 1.25  # the growth of memory since the frozen set's last collection at which it is thawed and collected
LOOK_EVERY = 100  # collections between two looks at memory (~8 s under load): a look walks the arenas, ~0.5 ms


class FreezeSurvivors:
    """A ``gc.callbacks`` entry freezing what each collection leaves, and thawing for one full collection on
    ``loop`` when memory has grown by `GROWTH`."""

    __slots__ = ("_collected_at", "_collections", "_loop", "_thawing")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._collected_at = sys.getallocatedblocks()
        self._collections = 0
        self._thawing = False

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase != "stop" or self._thawing:
            return
        gc.freeze()  # which also zeroes every generation's count: from now on, only young collections happen
        self._collections += 1
        if self._collections % LOOK_EVERY == 0 and sys.getallocatedblocks() > self._collected_at * GROWTH:
            self._thawing = True
            # not here: a collection started from a collection's callback does nothing, and one runs on whichever
            # thread allocated
            self._loop.call_soon_threadsafe(self.thaw)

    def thaw(self) -> None:
        """Collect the frozen set once, and freeze what it leaves."""
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        self._collected_at = sys.getallocatedblocks()
        self._thawing = False

    def remove(self) -> None:
        """Back to CPython's own policy, the frozen set thawed."""
        gc.callbacks.remove(self)
        gc.unfreeze()


def install(loop: asyncio.AbstractEventLoop) -> FreezeSurvivors:
    """Freeze what exists now (start-up's objects), and from now on what survives each collection."""
    gc.freeze()
    policy = FreezeSurvivors(loop)
    gc.callbacks.append(policy)
    return policy
