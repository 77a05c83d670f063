"""GPS fixes from many phones at once: the newest per unit wins everywhere, superseded fixes are counted, and the
flush needs nothing from the pool the handlers share."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import struct
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from server.config import LimitSettings
from server.keys import POOL, POSITIONS
from tests.conftest import Api, app_config, start_api
from tests.server.dispatch_support import CREW_PASSWORD, Socket, crew_for
from tests.server.test_metrics_endpoint import scrape, value

PHONES = 12
FIXES_EACH = 40


def now() -> dt.datetime:
    """A time after the demo units' own fixes (made as the database was): the phones' fixes count from it."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def fix(n: int, at: dt.datetime) -> dict[str, Any]:
    """The n-th fix of a phone: n hundred-thousandths of a degree north of the demo region's middle."""
    return {"type": "position", "lat": -6.30 + n * 1e-5, "lon": 106.70, "accuracy": 5, "at": at.isoformat()}


def frames(messages: list[dict[str, Any]]) -> bytes:
    """Client text frames, masked with the zero key, back to back: written at once, they arrive together."""
    out = b""
    for message in messages:
        payload = json.dumps(message).encode()
        assert len(payload) < 126
        out += struct.pack("!BB", 0x81, 0x80 | len(payload)) + b"\0\0\0\0" + payload
    return out


def burst(socket: Socket, messages: list[dict[str, Any]]) -> None:
    """Send ``messages`` in one write, so the server reads them in one go (its buffer holds all but the first)."""
    socket.ws.transport.write(frames(messages))


@pytest.fixture
async def lifted(demo_dsn: str) -> AsyncIterator[Api]:
    """The app with the per-socket position limit lifted: a burst of fixes is not a policy violation here."""
    base = app_config(demo_dsn)
    limits = dataclasses.replace(base.limits, ws_position_per_s=1000.0, ws_position_burst=1000)
    client = await start_api(demo_dsn, dataclasses.replace(base, limits=limits))
    yield client
    await client.session.close()
    await client.server.close()


async def phones(api: Api, con: asyncpg.Connection, count: int) -> dict[str, Socket]:
    units = [r["id"] for r in await con.fetch("SELECT id FROM units ORDER BY id LIMIT $1", count)]
    assert len(units) == count
    sockets = {}
    for unit in units:
        token = await api.login(await crew_for(con, unit), CREW_PASSWORD)
        sockets[unit] = await Socket.open(api, "/ws/unit", token)
    return sockets


def positions(console: Socket) -> list[dict[str, Any]]:
    return [u for m in console.messages if m.get("type") == "positions" for u in m["units"]]


async def seen(console: Socket, wanted: dict[str, dt.datetime]) -> None:
    """Read the console until it has seen, for every unit of ``wanted``, a position at that time."""

    def missing() -> set[str]:
        got = {(u["id"], dt.datetime.fromisoformat(u["at"])) for u in positions(console)}
        return {unit for unit, at in wanted.items() if (unit, at) not in got}

    while missing():
        await console.next()


async def test_many_phones_at_once_each_unit_ends_on_its_newest_fix_and_never_goes_back(lifted: Api, con: asyncpg.Connection) -> None:
    base = now()
    operator = await lifted.login("operator")
    console = await Socket.open(lifted, "/ws/operator", operator)
    sockets = await phones(lifted, con, PHONES)
    newest = {unit: base + dt.timedelta(seconds=FIXES_EACH) for unit in sockets}

    async def phone(socket: Socket) -> None:
        # Fixes in order, some one at a time and some in bursts, the server's flushes falling between them.
        for n in range(1, FIXES_EACH + 1, 4):
            burst(socket, [fix(k, base + dt.timedelta(seconds=k)) for k in range(n, n + 4)])
            await asyncio.sleep(0.01)

    await asyncio.gather(*(phone(s) for s in sockets.values()))
    await seen(console, newest)
    # Now each phone sends a fix older than its newest (a late one off a flaky network), all at once.
    await asyncio.gather(*(s.ws.send(json.dumps(fix(0, base))) for s in sockets.values()))
    for socket in sockets.values():
        assert (await socket.request({"type": "ping"}))["type"] == "pong"  # the old fix was taken in before
    await lifted.server.app[POSITIONS].flush()
    # A newer fix of one unit, flushed after the old ones: once the console has it, it has had any before it.
    marker_unit = next(iter(sockets))
    marker = base + dt.timedelta(seconds=FIXES_EACH + 1)
    await sockets[marker_unit].ws.send(json.dumps(fix(FIXES_EACH + 1, marker)))
    await seen(console, {marker_unit: marker})

    last_seen: dict[str, dt.datetime] = {}
    for entry in positions(console):
        at = dt.datetime.fromisoformat(entry["at"])
        if entry["id"] in sockets:
            assert at >= last_seen.get(entry["id"], at), f"{entry['id']} went back to {at}"
            last_seen[entry["id"]] = at
    assert last_seen == newest | {marker_unit: marker}
    stored = {r["id"]: r for r in await con.fetch("SELECT id, position_at, position_lat FROM units WHERE id = ANY($1)", list(sockets))}
    for unit, at in (newest | {marker_unit: marker}).items():
        assert stored[unit]["position_at"] == at, unit
    assert stored[marker_unit]["position_lat"] == pytest.approx(-6.30 + (FIXES_EACH + 1) * 1e-5)


async def test_a_fix_with_a_newer_one_waiting_behind_it_is_superseded_and_counted(lifted: Api, con: asyncpg.Connection) -> None:
    base = now()
    unit, socket = (await phones(lifted, con, 1)).popitem()
    before = await scrape(lifted)
    count = 50
    burst(socket, [fix(n, base + dt.timedelta(seconds=n)) for n in range(1, count + 1)])
    assert (await socket.request({"type": "ping"}))["type"] == "pong"
    await lifted.server.app[POSITIONS].flush()
    after = await scrape(lifted)
    received = value(after, "psc119_gps_fixes_received_total") - value(before, "psc119_gps_fixes_received_total")
    superseded = value(after, "psc119_gps_fixes_superseded_total") - value(before, "psc119_gps_fixes_superseded_total")
    assert received == count
    # All but the newest were superseded: dropped on the socket (a newer one waited behind) or before the flush.
    assert superseded == count - 1
    assert value(after, "psc119_gps_flush_delay_seconds_count") > value(before, "psc119_gps_flush_delay_seconds_count")
    assert await con.fetchval("SELECT position_at FROM units WHERE id = $1", unit) == base + dt.timedelta(seconds=count)


async def test_a_superseded_fix_still_counts_against_the_sockets_limit(api: Api, con: asyncpg.Connection) -> None:
    base = now()
    socket = (await phones(api, con, 1)).popitem()[1]
    burst(socket, [fix(n, base + dt.timedelta(seconds=n)) for n in range(1, LimitSettings().ws_position_burst + 5)])
    refusal = await socket.wait_for(lambda m: m.get("type") == "error")
    assert refusal["error"]["code"] == "rate_limited"
    await socket.ws.wait_closed()
    assert socket.ws.close_code == 1008


async def test_fixes_reach_the_console_while_every_pooled_connection_is_taken(lifted: Api, con: asyncpg.Connection) -> None:
    base = now()
    operator = await lifted.login("operator")
    console = await Socket.open(lifted, "/ws/operator", operator)
    unit, socket = (await phones(lifted, con, 1)).popitem()
    pool = lifted.server.app[POOL]
    held = [await pool.acquire() for _ in range(pool.get_max_size())]  # handlers busy: none left for anyone
    try:
        at = base + dt.timedelta(seconds=7)
        await socket.ws.send(json.dumps(fix(7, at)))
        await seen(console, {unit: at})
    finally:
        for held_con in held:
            await pool.release(held_con)
    assert await con.fetchval("SELECT position_at FROM units WHERE id = $1", unit) == at


async def test_a_flush_larger_than_its_batch_writes_every_unit(demo_dsn: str, con: asyncpg.Connection) -> None:
    base = now()
    config = app_config(demo_dsn)
    api = await start_api(demo_dsn, dataclasses.replace(config, dispatch=dataclasses.replace(config.dispatch, position_flush_batch=2)))
    try:
        sockets = await phones(api, con, 5)
        at = base + dt.timedelta(seconds=3)
        for socket in sockets.values():
            await socket.ws.send(json.dumps(fix(3, at)))
            assert (await socket.request({"type": "ping"}))["type"] == "pong"
        await api.server.app[POSITIONS].flush()
        stored = await con.fetch("SELECT position_at FROM units WHERE id = ANY($1)", list(sockets))
        assert [r["position_at"] for r in stored] == [at] * 5
    finally:
        await api.session.close()
        await api.server.close()


async def test_a_flush_does_not_wait_for_a_unit_that_a_change_holds(api: Api, con: asyncpg.Connection, demo_dsn: str) -> None:
    base = now()
    operator = await api.login("operator")
    console = await Socket.open(api, "/ws/operator", operator)
    sockets = await phones(api, con, 2)
    (held_unit, held_socket), (free_unit, free_socket) = sorted(sockets.items())  # the held one first in the flush's order
    at = base + dt.timedelta(seconds=5)
    for socket in (held_socket, free_socket):
        await socket.ws.send(json.dumps(fix(5, at)))
        assert (await socket.request({"type": "ping"}))["type"] == "pong"
    change = await asyncpg.connect(demo_dsn)
    try:
        holding = change.transaction()
        await holding.start()
        await change.execute("SELECT 1 FROM units WHERE id = $1 FOR UPDATE", held_unit)  # as a dispatch holds its unit
        # The flush ends while the row is still held; it used to wait for it, holding the rows it had written.
        await asyncio.wait_for(api.server.app[POSITIONS].flush(), 5)
        stored = {r["id"]: r["position_at"] for r in await con.fetch("SELECT id, position_at FROM units WHERE id = ANY($1)", list(sockets))}
        assert stored[free_unit] == at
        assert stored[held_unit] != at
        await seen(console, {free_unit: at})
        await holding.commit()
    finally:
        await change.close()
    await api.server.app[POSITIONS].flush()  # the held fix waited for this one
    assert await con.fetchval("SELECT position_at FROM units WHERE id = $1", held_unit) == at
    await seen(console, {held_unit: at})
    assert await con.fetchval("SELECT count(*) FROM unit_track WHERE unit_id = $1 AND at = $2", held_unit, at) == 1


async def test_a_console_that_falls_behind_still_gets_every_units_newest_position(api: Api) -> None:
    positions = api.server.app[POSITIONS]
    feed = positions.listen()
    try:
        # Far more announcements than a console reads meanwhile, each unit twice: an older then a newer position.
        epoch = now().timestamp()
        for second in (0, 1):
            for n in range(300):
                positions._on_notify(json.dumps([[f"u-{n:03d}", -6.3, 106.7 + second * 1e-3, epoch + second]]))
        message = feed.take()
    finally:
        positions.unlisten(feed)
    assert message is not None and message["type"] == "positions"
    got = {u["id"]: u for u in message["units"]}
    assert len(got) == 300
    assert all(dt.datetime.fromisoformat(u["at"]).timestamp() == epoch + 1 and u["lon"] == 106.7 + 1e-3 for u in got.values())
