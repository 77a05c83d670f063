"""The subscriptions' small queue and flag behave as the asyncio ones the bus used before them."""

from __future__ import annotations

import asyncio
import collections
import gc

import pytest

from server.mailbox import Flag, Mailbox


async def test_items_come_out_in_order_and_a_full_mailbox_refuses_more() -> None:
    box: Mailbox[int] = Mailbox(3)
    assert box.empty() and box.qsize() == 0
    for n in range(3):
        box.put_nowait(n)
    with pytest.raises(asyncio.QueueFull):
        box.put_nowait(3)
    assert [await box.get() for _ in range(3)] == [0, 1, 2]
    assert box.empty()
    box.put_nowait(4)  # room again
    assert await box.get() == 4


async def test_an_emptied_mailbox_holds_no_queue_as_an_idle_socket_waits() -> None:
    box: Mailbox[int] = Mailbox(10)
    for n in range(3):
        box.put_nowait(n)
    assert any(isinstance(held, collections.deque) for held in gc.get_referents(box))
    assert [box.get_nowait(), await box.get(), box.get_nowait()] == [0, 1, 2]
    assert not any(isinstance(held, collections.deque) for held in gc.get_referents(box))
    box.put_nowait(3)
    assert box.qsize() == 1 and await box.get() == 3 and box.empty()


async def test_a_reader_waits_for_the_next_item_and_a_cancelled_one_loses_nothing() -> None:
    box: Mailbox[str] = Mailbox(10)
    waiting = asyncio.create_task(box.get())
    await asyncio.sleep(0)
    assert not waiting.done()
    box.put_nowait("a")
    assert await waiting == "a"
    cancelled = asyncio.create_task(box.get())
    await asyncio.sleep(0)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    box.put_nowait("b")
    assert await asyncio.wait_for(box.get(), 1) == "b"


async def test_a_flag_wakes_every_waiter_once_set_and_stays_set() -> None:
    flag = Flag()
    waiters = [asyncio.create_task(flag.wait()) for _ in range(3)]
    await asyncio.sleep(0)
    waiters[0].cancel()  # one waiter gone: the others still wake
    await asyncio.sleep(0)
    assert not flag.is_set() and not any(w.done() for w in waiters[1:])
    flag.set()
    await asyncio.wait_for(asyncio.gather(*waiters[1:]), 1)
    assert flag.is_set()
    await asyncio.wait_for(flag.wait(), 1)  # already set: no wait
