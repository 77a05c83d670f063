"""How long the garbage collector stops this process, by generation.

A full collection walks every object the process still tracks and serves nothing meanwhile: with
thousands of sockets it is the longest pause the process takes, and a dispatch that arrives then
waits it out. What lives is frozen out of it (`server.gc_policy`); what is left shows here.
"""

from __future__ import annotations

import gc
import time
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from prometheus_client import Histogram

from server.keys import METRICS


class Pauses:
    """A ``gc.callbacks`` entry timing each collection into ``histogram`` by generation."""

    __slots__ = ("_histogram", "_started")

    def __init__(self, histogram: Histogram) -> None:
        self._histogram = histogram
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self._histogram.labels(str(info["generation"])).observe(time.perf_counter() - self._started)


async def watch(app: web.Application) -> AsyncIterator[None]:
    """Time the collections while the application runs."""
    pauses = Pauses(app[METRICS].gc_pauses)
    gc.callbacks.append(pauses)
    try:
        yield
    finally:
        gc.callbacks.remove(pauses)
