"""What an idle unit socket holds: its handler and one sender, no greeting, and a subscription that still closes
a socket too slow for its events."""

from __future__ import annotations

import asyncio
import datetime as dt
import gc

import asyncpg
import websockets

from server.events import Event
from server.keys import BUS
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


async def test_an_idle_unit_socket_runs_one_task_of_its_own(api: Api, con: asyncpg.Connection) -> None:
    await unit_sockets(api, con, 1)  # whatever the first socket starts once (the presence of the unit) is running
    await asyncio.sleep(0.2)
    before = psc119_tasks()
    _, sockets = await unit_sockets(api, con, SOCKETS)
    await asyncio.sleep(0.2)
    per_socket = (psc119_tasks() - before) / SOCKETS
    assert per_socket <= 1, per_socket  # its sender of events; no watcher of its session, no getters beside it
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
    subscriptions = bus._subscribers[f"unit:{unit}"]
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
