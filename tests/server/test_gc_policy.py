"""``gc_policy``: what survives a collection is walked by no later one; frozen cyclic garbage is collected once
memory has grown by a quarter."""

from __future__ import annotations

import asyncio
import gc
import sys
import weakref
from collections.abc import AsyncIterator

import pytest

from server import gc_policy


class Cycle:
    """An object only the collector frees: it refers to itself."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture
async def policy() -> AsyncIterator[gc_policy.FreezeSurvivors]:
    installed = gc_policy.install(asyncio.get_running_loop())
    yield installed
    installed.remove()


def walked(obj: object) -> bool:
    """Whether a collection would walk ``obj``: frozen objects are in no generation."""
    return any(o is obj for o in gc.get_objects())


async def test_what_survives_a_collection_is_walked_by_no_later_one(policy: gc_policy.FreezeSurvivors) -> None:
    kept = Cycle()
    assert walked(kept)
    gc.collect(0)
    assert gc.is_tracked(kept) and not walked(kept)


async def test_frozen_garbage_is_collected_once_memory_has_grown_by_a_quarter(policy: gc_policy.FreezeSurvivors) -> None:
    garbage = Cycle()
    gone = weakref.ref(garbage)
    gc.collect(0)  # survived: frozen
    del garbage
    for _ in range(gc_policy.LOOK_EVERY):
        gc.collect(0)
    await asyncio.sleep(0)
    assert gone() is not None  # memory has not grown: frozen garbage stays

    ballast = [[] for _ in range(int(sys.getallocatedblocks() * (gc_policy.GROWTH - 1)) + 10_000)]
    for _ in range(gc_policy.LOOK_EVERY):
        gc.collect(0)
    await asyncio.sleep(0)  # the thaw runs on the loop, not inside a collection
    assert gone() is None
    assert not walked(ballast)  # and what lives is frozen again


async def test_removed_the_process_collects_as_cpython_does() -> None:
    policy = gc_policy.install(asyncio.get_running_loop())
    kept = Cycle()
    gc.collect(0)
    policy.remove()
    assert walked(kept) and policy not in gc.callbacks
