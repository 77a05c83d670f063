"""Benchmark: the server's memory per idle socket of every kind (unit, console, events and room sockets), with and
without permessage-deflate, against a bare aiohttp server holding as many idle sockets.

For each kind, a fresh server process (a real ``psc119 serve`` on one embedded PostgreSQL holding the demo
region; the bare server of `bench/baseline_servers.py`) is warmed with a few sockets opened and closed, then
``--sockets`` sockets are opened and left idle past one heartbeat; the growth of the server's VmRSS divided by
their number is the cost of one. Unit sockets are one crew's phone, console sockets (``/ws/operator``) and event
sockets (``/ws/events``) the demo operator's; room sockets are both doctors of ``--sockets``/2 accepted consults,
joined. Asserts no figures.

    python bench/bench_memory.py [--sockets 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path

import websockets
from results import Row, emit

from bench_support import CREW_PASSWORD, add_crew, baseline_server, consult_rooms, demo_database, login, rss_kib, serve
from server import db
from server.config import ServerSettings
from server.demo_region import DEMO_PASSWORD
from server.live import HEARTBEAT_S

Opener = Callable[[int], Awaitable[websockets.ClientConnection]]
WARM = 10
TRIM_S = ServerSettings().memory_trim_s


async def per_socket(pid: int, count: int, open_one: Opener) -> float:
    """KiB of the server's resident memory per idle socket, once every socket has been pinged: an idle socket
    spends most of its life after its first heartbeat."""
    for ws in [await open_one(i) for i in range(WARM)]:
        await ws.close()
    # Past the server's next trim (`server.memory_trim_s`): the heap the warm-up and the setup freed goes back to
    # the system before memory is read, not while the sockets are open, where it would cancel out their growth.
    await asyncio.sleep(TRIM_S + 1.0)
    before = rss_kib(pid)
    sockets = [await open_one(WARM + i) for i in range(count)]
    await asyncio.sleep(HEARTBEAT_S + 1.0)
    after = rss_kib(pid)
    for ws in sockets:
        await ws.close()
    return (after - before) / count


def compression(deflate: bool) -> str | None:
    return "deflate" if deflate else None


async def psc119_session_socket(root: Path, dsn: str, route: str, user: str, password: str, count: int, deflate: bool) -> float:
    """A socket authenticated by a session: /ws/unit, /ws/operator or /ws/events."""
    async with serve(root, dsn) as server:
        token = await login(server.url, user, password)
        url = server.url.replace("http://", "ws://") + f"{route}?token={token}"

        async def open_one(_i: int) -> websockets.ClientConnection:
            ws = await websockets.connect(url, compression=compression(deflate))
            await ws.recv()  # hello
            return ws

        return await per_socket(server.pid, count, open_one)


async def psc119_room(root: Path, dsn: str, count: int, deflate: bool) -> float:
    async with serve(root, dsn) as server:
        rooms = await consult_rooms(server.url, (count + WARM) // 2 + 1)
        ends = [(url, token) for url, pk, sp in rooms for token in (pk, sp)]

        async def open_one(i: int) -> websockets.ClientConnection:
            url, token = ends[i]
            ws = await websockets.connect(url, compression=compression(deflate))
            await ws.send(json.dumps({"type": "join", "token": token, "kind": "browser"}))
            while json.loads(await ws.recv())["type"] != "welcome":
                pass
            return ws

        return await per_socket(server.pid, count, open_one)


async def bare(count: int, deflate: bool) -> float:
    async with baseline_server("forward") as (url, pid):
        ws_url = url.replace("http://", "ws://")

        async def open_one(i: int) -> websockets.ClientConnection:
            ws = await websockets.connect(f"{ws_url}/ws/unit?unit=u{i}", compression=compression(deflate))
            await ws.recv()  # hello
            return ws

        return await per_socket(pid, count, open_one)


KINDS = ("unit", "console", "events", "room")
# Which kinds to measure with permessage-deflate offered: "all", or only the console, the one kind that accepts it
# (the others refuse it, and measure as without it).
DEFLATED = {"all": KINDS, "console": ("console",)}


async def main(count: int, compressions: tuple[bool, ...], deflated: tuple[str, ...]) -> None:
    rows = []
    async with demo_database("psc119-bench-memory-") as (root, dsn):
        con = await db.connect(dsn)
        try:
            crew = await add_crew(con, await con.fetchval("SELECT id FROM units ORDER BY id LIMIT 1"))
        finally:
            await con.close()
        measure = {
            "unit": lambda deflate: psc119_session_socket(root, dsn, "/ws/unit", crew, CREW_PASSWORD, count, deflate),
            "console": lambda deflate: psc119_session_socket(root, dsn, "/ws/operator", "operator", DEMO_PASSWORD, count, deflate),
            "events": lambda deflate: psc119_session_socket(root, dsn, "/ws/events", "operator", DEMO_PASSWORD, count, deflate),
            "room": lambda deflate: psc119_room(root, dsn, count, deflate),
        }
        for deflate in compressions:
            label = "with permessage-deflate" if deflate else "no compression"
            base = await bare(count, deflate)
            kinds = {kind: await measure[kind](deflate) for kind in (deflated if deflate else KINDS)}
            figures = "   ".join(f"{kind} socket {kib:6.1f} KiB" for kind, kib in kinds.items())
            print(f"{label:<24} {figures}   bare aiohttp {base:6.1f} KiB")
            rows += [
                Row(f"memory per idle {kind} socket, {label} ({count} sockets)", kib, base, "bare aiohttp idle socket", "KiB")
                for kind, kib in kinds.items()
            ]
    emit(*rows)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sockets", type=int, default=5000)
    parser.add_argument("--compression", choices=("none", "deflate", "both"), default="both",
                        help="measure without permessage-deflate, with it (offered by the client), or both")
    parser.add_argument("--deflated", choices=tuple(DEFLATED), default="all",
                        help="with permessage-deflate, measure every kind or only the console (the one kind that accepts it)")
    args = parser.parse_args()
    compressions = {"none": (False,), "deflate": (True,), "both": (False, True)}[args.compression]
    asyncio.run(main(args.sockets, compressions, DEFLATED[args.deflated]))
