"""``psc119_gc_pause_seconds``: each garbage collection's pause, by generation, while the application runs."""

from __future__ import annotations

import gc

from tests.conftest import Api
from tests.server.test_metrics_endpoint import scrape, value


async def test_each_collection_is_timed_by_generation(api: Api) -> None:
    before = await scrape(api)
    for _ in range(3):
        gc.collect(2)
    gc.collect(0)
    after = await scrape(api)
    full = value(after, "psc119_gc_pause_seconds_count", generation="2") - value(before, "psc119_gc_pause_seconds_count", generation="2")
    assert full >= 3  # the scrape's own work may have set off more
    assert value(after, "psc119_gc_pause_seconds_sum", generation="2") > value(before, "psc119_gc_pause_seconds_sum", generation="2")
    assert value(after, "psc119_gc_pause_seconds_count", generation="0") > value(before, "psc119_gc_pause_seconds_count", generation="0")


async def test_a_stopped_application_stops_timing(api: Api) -> None:
    watching = len(gc.callbacks)
    await api.server.close()
    assert len(gc.callbacks) == watching - 1
