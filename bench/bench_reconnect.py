"""Benchmark: every field phone reconnecting at once, as after a server restart or a district-wide network blip,
against a bare aiohttp server taking as many sockets at once.

A real ``psc119 serve`` (its own process, embedded PostgreSQL, the demo region) with ``--phones`` units on duty,
each with a crew session (`dispatch_load.prepare`). Each round opens every phone's ``/ws/unit`` socket at the
same moment and waits until each is greeted (psc119: the session checked, the phone's presence recorded and
announced, its greeting with the unit's state sent); then closes them all. The bare server of
`bench/baseline_servers.py` takes as many sockets at once from the same client code, each greeted with a hello.
Prints the median over ``--rounds`` of the time until the last socket is greeted and the server's (and
PostgreSQL's) CPU time per socket over the round. Asserts no figures.

    python bench/bench_reconnect.py [--phones 2000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable

import dispatch_load as load
import websockets
from bench_dispatch import unit_urls
from results import Row, emit

from bench_support import baseline_server, demo_database, serve

SETTLE_S = 3.0  # between rounds: the closes are answered before the next round starts


async def rounds(urls: list[str], count: int, cpu: Callable[[], float], database_cpu: Callable[[], float]) -> tuple[float, float, float]:
    """Medians over ``count`` rounds: seconds until every socket of ``urls`` opened at once is greeted, and the
    server's and the database's CPU ms per socket."""
    took, server_ms, database_ms = [], [], []

    async def greeted(url: str) -> websockets.ClientConnection:
        ws = await websockets.connect(url, max_queue=None, compression=None, open_timeout=120)
        await ws.recv()
        return ws

    for _ in range(count):
        await asyncio.sleep(SETTLE_S)
        cpu0, database0, started = cpu(), database_cpu(), time.perf_counter()
        sockets = await asyncio.gather(*(greeted(url) for url in urls))
        took.append(time.perf_counter() - started)
        server_ms.append((cpu() - cpu0) * 1000 / len(urls))
        database_ms.append((database_cpu() - database0) * 1000 / len(urls))
        await asyncio.gather(*(ws.close() for ws in sockets))
    return statistics.median(took), statistics.median(server_ms), statistics.median(database_ms)


async def main(args: argparse.Namespace) -> None:
    async with demo_database("bench-reconnect-") as (root, dsn):
        fleet = await load.prepare(dsn, args.phones)
        async with serve(root, dsn) as server:
            urls = [url for url, _ in unit_urls([server], fleet).values()]
            psc119 = await rounds(urls, args.rounds, lambda: load.cpu_seconds([server.pid]), lambda: load.database_cpu_seconds(root))
    print(f"psc119: {args.phones} phones greeted in {psc119[0]:.2f} s; server {psc119[1]:.2f} ms, database {psc119[2]:.2f} ms CPU a socket")
    async with baseline_server("forward") as (url, pid):
        ws_url = url.replace("http://", "ws://")
        bare = await rounds([f"{ws_url}/ws/unit?unit=u{n}" for n in range(args.phones)], args.rounds,
                            lambda: load.cpu_seconds([pid]), lambda: 0.0)
    print(f"bare aiohttp: {args.phones} sockets greeted in {bare[0]:.2f} s; server {bare[1]:.2f} ms CPU a socket")
    size = f"{args.phones} phones at once, median of {args.rounds}"
    emit(
        Row(f"every phone reconnecting: the last greeted ({size})", psc119[0] * 1000, bare[0] * 1000, "bare aiohttp", "ms"),
        Row(f"every phone reconnecting: server CPU a socket ({size})", psc119[1], bare[1], "bare aiohttp", "ms"),
        Row(f"every phone reconnecting: database CPU a socket ({size})", psc119[2], None, "-", "ms",
            "the session, the phone's presence and its announcement, the unit's state for the greeting"),
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--phones", type=int, default=2000, help="unit phones reconnecting at once")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, each all phones at once")
    asyncio.run(main(parser.parse_args()))
