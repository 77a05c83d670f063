"""``gc_policy``: what survives a collection is walked by no later one; frozen cyclic garbage is collected once the
websockets closed since have left a quarter of memory in garbage, or memory has doubled; a server counts its
closed websockets."""

from __future__ import annotations

import asyncio
import gc
import sys
import weakref
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from server import gc_policy
from server.config import LimitSettings
from server.connections import GuardedRunner


class Cycle:
    """An object only the collector frees: it refers to itself."""

    def __init__(self) -> None:
        self.me = self


class Closed:
    """A running count of closed websockets, as a server's connection guard keeps it."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> int:
        return self.count


@pytest.fixture
def closed() -> Closed:
    return Closed()


@pytest.fixture
async def policy(closed: Closed) -> AsyncIterator[gc_policy.FreezeSurvivors]:
    installed = gc_policy.install(asyncio.get_running_loop(), closed)
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


def frozen_garbage() -> weakref.ref[Cycle]:
    """A cycle frozen by a collection it survived, then let go: only a thaw frees it."""
    garbage = Cycle()
    gone = weakref.ref(garbage)
    gc.collect(0)
    del garbage
    return gone


async def look() -> None:
    """As many collections as the policy lets pass between two looks, then a turn of the loop (a thaw runs there,
    not inside a collection)."""
    for _ in range(gc_policy.LOOK_EVERY):
        gc.collect(0)
    await asyncio.sleep(0)


def blocks_until(factor: float) -> int:
    return int(sys.getallocatedblocks() * (factor - 1)) + 10_000


async def test_memory_grown_by_live_objects_alone_is_not_walked(policy: gc_policy.FreezeSurvivors) -> None:
    gone = frozen_garbage()
    await look()
    assert gone() is not None  # nothing grew, no socket closed: frozen garbage stays
    # Sockets opening (a shift's phones connecting) grow memory by more than a quarter, all of it alive.
    live = [[] for _ in range(blocks_until(1.5))]
    await look()
    assert gone() is not None
    assert not walked(live)


async def test_frozen_garbage_is_collected_once_closed_sockets_have_left_a_quarter_of_memory(
    policy: gc_policy.FreezeSurvivors, closed: Closed,
) -> None:
    gone = frozen_garbage()
    enough = int(sys.getallocatedblocks() * gc_policy.GARBAGE_SHARE / gc_policy.SOCKET_GARBAGE) + 1
    closed.count += enough // 2
    await look()
    assert gone() is not None  # half the estimate: not yet
    closed.count += enough
    await look()
    assert gone() is None
    kept = Cycle()
    gc.collect(0)
    assert not walked(kept)  # what lives is frozen again
    gone = frozen_garbage()
    closed.count += enough // 2
    await look()
    assert gone() is not None  # counted again from the thaw


async def test_frozen_garbage_is_collected_once_memory_has_doubled_whatever_the_cause(policy: gc_policy.FreezeSurvivors) -> None:
    gone = frozen_garbage()
    ballast = [[] for _ in range(blocks_until(gc_policy.GROWTH))]
    await look()
    assert gone() is None
    assert not walked(ballast)


async def test_a_server_counts_its_closed_websockets_not_its_http_connections() -> None:
    async def socket(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for _ in ws:
            pass
        return ws

    async def plain(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/ws", socket)
    app.router.add_get("/plain", plain)
    runner = GuardedRunner(app, LimitSettings(), shutdown_timeout=1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        for _ in range(3):
            async with aiohttp.ClientSession() as http:
                async with http.get(f"{url}/plain") as r:
                    assert await r.text() == "ok"
        async with aiohttp.ClientSession() as http:
            for _ in range(2):
                async with http.ws_connect(f"{url}/ws"):
                    pass
        for _ in range(100):
            if runner.guard.sockets_closed == 2 and not runner.guard.open:
                break
            await asyncio.sleep(0.02)
        assert runner.guard.sockets_closed == 2
        assert not runner.guard.open  # the three HTTP connections closed too, uncounted
    finally:
        await runner.cleanup()


async def test_removed_the_process_collects_as_cpython_does(closed: Closed) -> None:
    policy = gc_policy.install(asyncio.get_running_loop(), closed)
    kept = Cycle()
    gc.collect(0)
    policy.remove()
    assert walked(kept) and policy not in gc.callbacks
