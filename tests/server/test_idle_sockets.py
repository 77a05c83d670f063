"""What an idle unit socket holds: its receiving loop alone (no sender task, no middleware's frame), no greeting,
and a subscription that still delivers its events and closes a socket too slow for them."""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import json
from typing import Any

import asyncpg
import websockets

from server.events import Event
from server.keys import BUS, POSITIONS
from tests.conftest import Api
from tests.server.dispatch_support import CREW_PASSWORD, Socket, crew_for

SOCKETS = 20


def psc119_tasks() -> int:
    """The running tasks but aiohttp's own (a connection's and its request's) and the test's clients'."""
    return sum(not any(lib in getattr(t.get_coro(), "cr_code", None).co_filename for lib in ("/aiohttp/", "/websockets/"))  # type: ignore[union-attr]
               for t in asyncio.all_tasks())


async def unit_sockets(api: Api, con: asyncpg.Connection, count: int) -> tuple[str, list[Socket]]:
    unit = await con.fetchval("SELECT id FROM units ORDER BY id LIMIT 1")
    token = await api.login(await crew_for(con, unit), CREW_PASSWORD)
    return unit, [await Socket.open(api, "/ws/unit", token) for _ in range(count)]


async def test_an_idle_unit_socket_runs_no_task_of_its_own(api: Api, con: asyncpg.Connection) -> None:
    await unit_sockets(api, con, 1)  # whatever the first socket starts once (the presence of the unit) is running
    await asyncio.sleep(0.2)
    before = psc119_tasks()
    unit, sockets = await unit_sockets(api, con, SOCKETS)
    await asyncio.sleep(0.2)
    # No sender waiting for events, no watcher of its session, no getters: a sender runs only while there is
    # something to send.
    assert psc119_tasks() == before
    # And events still reach every one of them, in order, each once.
    now = dt.datetime.now(dt.UTC)
    bus = api.server.app[BUS]
    first = bus.last_id + 1
    for sub in list(bus._subscribers.get(f"unit:{unit}")):
        for n in range(3):
            sub.offer(Event(first + n, now, "unit.test", frozenset({f"unit:{unit}"}), {}))
    for socket in sockets:
        assert [(await socket.next())["id"] for _ in range(3)] == [first, first + 1, first + 2]
    await asyncio.sleep(0.1)
    assert psc119_tasks() == before  # each sender ended with its queue
    for socket in sockets:
        await socket.ws.close()


LIFE_FRAMES = ("aiohttp/web_protocol.py:", "aiohttp/web_ws.py:", "aiohttp/_websocket/", "server/upgraded.py:", "server/live.py:")


def request_stacks() -> list[list[str]]:
    """The frames each request being handled holds: file and function, from aiohttp's request task down."""
    stacks = []
    for task in asyncio.all_tasks():
        coro: Any = task.get_coro()
        if getattr(coro, "cr_code", None) is None or coro.cr_code.co_name != "_handle_request":
            continue
        stack = []
        while getattr(coro, "cr_code", None) is not None:
            stack.append(f"{coro.cr_code.co_filename}:{coro.cr_code.co_qualname}")
            coro = coro.cr_await
        stacks.append(stack)
    return stacks


async def test_an_idle_socket_holds_no_frame_of_the_middlewares_or_its_route_handler(api: Api, con: asyncpg.Connection) -> None:
    _, sockets = await unit_sockets(api, con, 3)
    token = await api.login("operator")
    sockets += [await Socket.open(api, path, token) for path in ("/ws/operator", "/ws/events")]
    stacks = request_stacks()
    assert len(stacks) == 5
    for stack in stacks:
        assert any("/server/live.py:_Socket.run" in frame for frame in stack), stack  # the socket's life runs there
        # aiohttp's connection and websocket, the socket's life: no middleware (metrics, request id, errors,
        # input, access), no application dispatch, no route handler.
        held = [frame for frame in stack if not any(f"/{part}" in frame for part in LIFE_FRAMES)]
        assert held == [], held
    for socket in sockets:
        await socket.ws.close()


async def test_an_idle_unit_socket_keeps_no_greeting(api: Api, con: asyncpg.Connection) -> None:
    _, sockets = await unit_sockets(api, con, 5)
    for socket in sockets:
        socket.messages.clear()  # the test's own copies of the hellos
    await asyncio.sleep(0.2)
    gc.collect()
    # The hello carries the unit, its dispatch and the crew's whole status table: sent once, kept by nobody.
    kept = [o for o in gc.get_objects() if isinstance(o, dict) and "crew_table" in o]
    assert kept == []
    for socket in sockets:
        await socket.ws.close()


async def test_a_unit_socket_too_slow_for_its_events_is_closed_to_resume(api: Api, con: asyncpg.Connection) -> None:
    unit, (socket,) = await unit_sockets(api, con, 1)
    bus = api.server.app[BUS]
    subscriptions = bus._subscribers.get(f"unit:{unit}")
    (subscription,) = subscriptions
    now = dt.datetime.now(dt.UTC)
    # More events than its queue holds, all at once: its sender cannot have taken any meanwhile.
    for n in range(bus._queue_size + 1):
        subscription.offer(Event(bus.last_id + 1 + n, now, "unit.test", frozenset({f"unit:{unit}"}), {}))
    assert subscription.overflowed.is_set()
    try:
        while True:
            await socket.next()
    except websockets.ConnectionClosed:
        pass
    assert socket.ws.close_code == 1013
    assert socket.ws.close_reason == "too slow; resume with ?after"


async def test_an_idle_console_socket_runs_no_task_of_its_own_and_still_gets_positions(api: Api) -> None:
    token = await api.login("operator")
    await Socket.open(api, "/ws/operator", token)  # whatever the first console starts once is running
    await asyncio.sleep(0.2)
    before = psc119_tasks()
    consoles = [await Socket.open(api, "/ws/operator", token) for _ in range(5)]
    await asyncio.sleep(0.2)
    assert psc119_tasks() == before  # no sender waiting for events or positions, no getters
    epoch = dt.datetime.now(dt.UTC).timestamp()
    api.server.app[POSITIONS]._on_notify(json.dumps([["u-idle", -6.3, 106.7, epoch]]))
    for console in consoles:
        message = await console.wait_for(lambda m: m["type"] == "positions")
        assert [u["id"] for u in message["units"]] == ["u-idle"]
    await asyncio.sleep(0.1)
    assert psc119_tasks() == before
    for console in consoles:
        await console.ws.close()
