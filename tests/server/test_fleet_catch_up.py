"""A recommendation that must see every committed change waits for the fleet index to reach that event: each
caller is answered when its own event is in, and one that gives up leaves nothing behind."""

from __future__ import annotations

import asyncio
import types
from collections.abc import Awaitable, Generator
from typing import Any

import asyncpg

from server import events
from server.keys import FLEET
from tests.conftest import Api


async def _append(con: asyncpg.Connection) -> int:
    async with con.transaction():
        await events.append(con, "test.tick", {}, ["role:admin"])
    return int(await con.fetchval("SELECT max(id) FROM events"))


async def test_each_caller_is_answered_once_the_index_has_its_event(api: Api, con: asyncpg.Connection) -> None:
    fleet = api.server.app[FLEET]
    await fleet.current()
    base = fleet.applied_id
    waiting = {n: asyncio.create_task(fleet.caught_up(base + n, timeout=10)) for n in (1, 2, 2, 3)}
    await asyncio.sleep(0.05)
    assert not any(task.done() for task in waiting.values())
    first = await _append(con)
    assert await asyncio.wait_for(waiting[1], 5) is True
    assert fleet.applied_id >= first
    if fleet.applied_id < base + 2:  # nothing else was committed meanwhile
        assert not waiting[2].done() and not waiting[3].done()
    await _append(con)
    await _append(con)
    assert await asyncio.wait_for(asyncio.gather(*waiting.values()), 5) == [True] * len(waiting)
    assert await fleet.caught_up(base) is True  # already there: no wait


@types.coroutine
def _stepped(awaitable: Awaitable[bool], steps: list[None]) -> Generator[Any, Any, bool]:
    """``awaitable``, counting each time the loop resumes it."""
    inner = awaitable.__await__()
    sent: Any = None
    thrown: BaseException | None = None
    while True:
        steps.append(None)
        try:
            yielded = inner.throw(thrown) if thrown is not None else inner.send(sent)
        except StopIteration as done:
            return bool(done.value)
        sent, thrown = None, None
        try:
            sent = yield yielded
        except BaseException as exc:  # a cancellation, passed on
            thrown = exc


async def test_a_caller_is_not_resumed_by_the_events_before_its_own(api: Api, con: asyncpg.Connection) -> None:
    fleet = api.server.app[FLEET]
    await fleet.current()
    steps: list[None] = []
    target = fleet.applied_id + 6
    waiting = asyncio.create_task(_stepped(fleet.caught_up(target, timeout=10), steps))
    await asyncio.sleep(0.05)
    while fleet.applied_id < target - 1:
        await _append(con)
        await fleet.caught_up(await con.fetchval("SELECT max(id) FROM events"))
    assert not waiting.done()
    await _append(con)
    assert await asyncio.wait_for(waiting, 5) is True
    assert len(steps) <= 2  # started, then answered: five events applied meanwhile woke it for nothing before


async def test_a_caller_that_gives_up_is_told_so_and_leaves_no_waiter(api: Api) -> None:
    fleet = api.server.app[FLEET]
    await fleet.current()
    assert await fleet.caught_up(fleet.applied_id + 1000, timeout=0.05) is False
    cancelled = asyncio.create_task(fleet.caught_up(fleet.applied_id + 1000, timeout=10))
    await asyncio.sleep(0.05)
    cancelled.cancel()
    await asyncio.gather(cancelled, return_exceptions=True)
    assert fleet._waiting == []
