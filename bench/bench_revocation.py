"""Benchmark: how fast a revoked session's sockets close, against how fast an ordinary event arrives.

Starts an embedded PostgreSQL in a temporary directory and the real app on 127.0.0.1, opens
``--sessions`` sessions (of as many operators) with ``--sockets`` /ws/events sockets each, then:

1. baseline: for each session's user, appends an event and times its arrival on all that user's sockets;
2. logs each session out and times, per session, logout reply -> the last of its sockets closed (4401);
3. appends events the old way (three statements) and through ``append_event`` (one call), same process.

It prints milliseconds (median, p90, max) and ratios; it asserts only the close codes, never a time.

    python bench/bench_revocation.py [--sessions 20] [--sockets 10] [--appends 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp
import asyncpg
from aiohttp import web
from results import Row, emit

from server import audit, db, events, users
from server.app import create_app
from server.config import AuthSettings, Config, DatabaseSettings
from server.embedded_db import EmbeddedDatabase
from server.keys import POOL
from server.passwords import Passwords
from server.revocation import CLOSE_SESSION_ENDED

AUTH = AuthSettings(argon2_time_cost=1, argon2_memory_kib=8192)
PASSWORD = "bench-pass-119"


def figures(ms: list[float]) -> str:
    ordered = sorted(ms)
    return f"median {statistics.median(ordered):.2f} ms, p90 {ordered[int(len(ordered) * 0.9) - 1]:.2f} ms, max {ordered[-1]:.2f} ms"


async def wait_message(ws: aiohttp.ClientWebSocketResponse) -> float:
    await ws.receive_json()
    return time.perf_counter()


async def wait_closed(ws: aiohttp.ClientWebSocketResponse) -> float:
    msg = await ws.receive()
    if msg.type != aiohttp.WSMsgType.CLOSE or msg.data != CLOSE_SESSION_ENDED:
        raise AssertionError(f"expected a close with {CLOSE_SESSION_ENDED}, got {msg.type} {msg.data}")
    return time.perf_counter()


async def old_append(con: asyncpg.Connection, n: int) -> None:
    """The three statements ``events.append`` sent before ``append_event`` (the baseline)."""
    await con.execute("SELECT pg_advisory_xact_lock($1)", 119_000_003)
    event_id = await con.fetchval(
        "INSERT INTO events (id, type, audience, payload) SELECT coalesce(max(id), 0) + 1, $1, $2, $3 FROM events RETURNING id",
        "bench.append", ["role:admin"], {"n": n},
    )
    await con.execute("SELECT pg_notify($1, $2)", events.CHANNEL, str(event_id))


async def new_append(con: asyncpg.Connection, n: int) -> None:
    await events.append(con, "bench.append", {"n": n}, ["role:admin"])


async def run(dsn: str, sessions: int, sockets: int, appends: int) -> None:
    app = create_app(Config(database=DatabaseSettings(url=dsn), auth=AUTH), dsn)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    pool = app[POOL]
    async with pool.acquire() as con:
        operators = [
            await users.add_user(con, Passwords(AUTH), actor=audit.CLI, username=f"bench-operator-{n}", role="operator",
                                 password=PASSWORD, min_password_length=8)
            for n in range(sessions)
        ]
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:  # no cap on sockets
        tokens = []
        for operator in operators:
            async with http.post(base + "/api/auth/login", json={"username": operator.username, "password": PASSWORD}) as r:
                tokens.append((await r.json())["token"])
        opened = {t: [await http.ws_connect(f"{base}/ws/events?token={t}") for _ in range(sockets)] for t in tokens}
        for group in opened.values():
            for ws in group:
                await ws.receive_json()  # hello

        arrivals = []
        for operator, group in zip(operators, opened.values(), strict=True):
            waits = [asyncio.create_task(wait_message(ws)) for ws in group]
            start = time.perf_counter()
            async with pool.acquire() as con, con.transaction():
                await events.append(con, "bench.tick", {}, [f"user:{operator.id}"])
            arrivals.append((max(await asyncio.gather(*waits)) - start) * 1000)
        print(f"event committed -> on all {sockets} sockets of its user (baseline): {figures(arrivals)}")

        closes = []
        for token, group in opened.items():
            waits = [asyncio.create_task(wait_closed(ws)) for ws in group]
            start = time.perf_counter()
            async with http.post(base + "/api/auth/logout", headers={"Authorization": f"Bearer {token}"}) as r:
                assert r.status == 200
            closes.append((max(await asyncio.gather(*waits)) - start) * 1000)
        print(f"logout -> all {sockets} sockets of the session closed with 4401: {figures(closes)}")
        print(f"ratio close / delivery (medians): {statistics.median(closes) / statistics.median(arrivals):.2f}")

    async with pool.acquire() as con:
        timings = {}
        for name, append in (("three statements, one writer (before)", old_append), ("append_event, one writer (now)", new_append)):
            await con.execute("SELECT setval('events_id_seq', max(id)) FROM events")  # past the ids numbered the old way
            start = time.perf_counter()
            for n in range(appends):
                async with con.transaction():
                    await append(con, n)
            timings[name] = (time.perf_counter() - start) / appends * 1000
            print(f"event append, {name}: {timings[name]:.3f} ms each")
        before, now = timings.values()
        print(f"append speed-up: {before / now:.2f}x")
    emit(
        Row(f"logout → all {sockets} sockets of the session closed (median)", statistics.median(closes),
            statistics.median(arrivals), "an event reaching the same sockets", "ms"),
        Row("event append, one writer, no contention", now, before, "three statements under the lock, as before", "ms"),
    )
    await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--sockets", type=int, default=10)
    parser.add_argument("--appends", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        embedded = EmbeddedDatabase(Path(tmp))
        embedded.start()
        try:
            dsn = embedded.dsn("bench")
            asyncio.run(db.ensure_database(dsn))
            asyncio.run(run(dsn, args.sessions, args.sockets, args.appends))
        finally:
            embedded.stop()


if __name__ == "__main__":
    main()
