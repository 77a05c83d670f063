"""Giving back to the operating system the memory a burst of work freed.

Python takes its larger objects and buffers from C's malloc. glibc's malloc gives freed memory back to the system
only from the top of its heap: what a burst frees in the middle of it (a shift's phones or a clinic's doctors
connecting: each join's frames, reads and answers, freed between the sockets that stay) stays resident for as long
as the process lives, though nothing uses it. One ``malloc_trim``, which gives back every whole free page of the heap,
after 5,000 room sockets had opened lowered resident memory by 2.3-2.7 KiB a socket's worth (part of it heap freed
before they opened); an idle socket itself is no smaller for it.

A trim took 2.3 ms at that size, 0.35 ms on a heap already trimmed. It runs in a thread: the loop waits for it
only if it allocates from malloc meanwhile. Where the C library has no ``malloc_trim`` (musl, macOS) nothing runs.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
from collections.abc import AsyncIterator, Callable

from aiohttp import web
from prometheus_client import Counter

from server.keys import CONFIG, METRICS
from server.tasks import cancel_and_wait


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        trim = ctypes.CDLL(None).malloc_trim  # the C library this process runs on
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


MALLOC_TRIM = _malloc_trim()


def resident_bytes() -> int:
    """This process's resident memory (Linux), 0 where unknown."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


async def trim() -> int:
    """Give back the heap's free pages; about how many resident bytes went."""
    if MALLOC_TRIM is None:
        return 0
    before = resident_bytes()
    await asyncio.to_thread(MALLOC_TRIM, 0)
    return max(0, before - resident_bytes())


async def keep_trimmed(every_s: float, given_back: Counter) -> None:
    while True:
        await asyncio.sleep(every_s)
        given_back.inc(await trim())


async def trimming(app: web.Application) -> AsyncIterator[None]:
    """The cleanup_ctx trimming every ``server.memory_trim_s`` (0: never) while the application runs."""
    every = app[CONFIG].server.memory_trim_s
    task = asyncio.create_task(keep_trimmed(every, app[METRICS].memory_trimmed), name="memory-trim") if every and MALLOC_TRIM else None
    try:
        yield
    finally:
        await cancel_and_wait(task)
