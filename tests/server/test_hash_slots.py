"""The ranked, bounded queue in front of the hashing threads."""

from __future__ import annotations

import asyncio

import pytest

from server.hash_slots import HashingBusy, HashSlots


async def _hold(slots: HashSlots, rank: int, order: list[int], release: asyncio.Event) -> None:
    async with slots.slot(rank):
        order.append(rank)
        await release.wait()


async def test_waiters_go_lowest_rank_first_and_a_full_queue_sheds_the_worst() -> None:
    slots, order, release = HashSlots(1, 2), list[int](), asyncio.Event()
    running = asyncio.create_task(_hold(slots, 9, order, release))
    await asyncio.sleep(0)
    late = asyncio.create_task(_hold(slots, 5, order, release))
    later = asyncio.create_task(_hold(slots, 7, order, release))
    await asyncio.sleep(0)
    with pytest.raises(HashingBusy):  # the queue is full of better waiters
        await _hold(slots, 8, order, release)
    clean = asyncio.create_task(_hold(slots, 0, order, release))
    await asyncio.sleep(0)
    with pytest.raises(HashingBusy):  # pushed out by the clean one
        await later
    release.set()
    await asyncio.gather(running, late, clean)
    assert order == [9, 0, 5]


async def test_a_cancelled_waiter_gives_its_place_back() -> None:
    slots, order, release = HashSlots(1, 1), list[int](), asyncio.Event()
    running = asyncio.create_task(_hold(slots, 0, order, release))
    await asyncio.sleep(0)
    waiter = asyncio.create_task(_hold(slots, 0, order, release))
    await asyncio.sleep(0)
    release.set()
    waiter.cancel()  # the running one releases before the cancelled waiter has cleaned up
    await running
    with pytest.raises(asyncio.CancelledError):
        await waiter
    await asyncio.wait_for(_hold(slots, 1, order, release), 1)
    assert order == [0, 1]
