"""Benchmark: what one socket flooding pings costs the other sockets' round trips.

Runs a real ``psc119 serve --demo`` (its own embedded PostgreSQL in a temporary
directory) and measures, from this process, the round trip of sequential pings on
a calm ``/ws/events`` socket: first alone (the baseline), then while another
process floods pings on a second socket of the same server as fast as it can,
once with the websocket limits switched off and once with a ping limit of 100 a
second (above the calm socket's 50). Prints p50/p99 in milliseconds, their ratio to the baseline, and
what became of the flooding socket. It asserts no timings.

    unshare -n sh -c 'ip link set lo up && exec .venv/bin/python bench/bench_ws_flood.py [--pings 500]'
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import websockets
from results import Row, emit

from bench_support import start_psc119

NO_LIMIT = {"PSC119_LIMITS_WS_PING_PER_S": "1000000", "PSC119_LIMITS_WS_PING_BURST": "1000000000"}
# The calm socket pings 50 times a second, so the limit here is 100 a second (the default, 1 a second, would
# stop the measurement itself); the flood sends thousands a second either way.
LIMIT = {"PSC119_LIMITS_WS_PING_PER_S": "100", "PSC119_LIMITS_WS_PING_BURST": "100"}
CALM_EVERY_S = 0.02


async def start_server(var_dir: Path, extra_env: dict[str, str]) -> tuple[asyncio.subprocess.Process, str]:
    env = {**os.environ, "PSC119_SERVER_VAR_DIR": str(var_dir), "PSC119_AUTH_ARGON2_TIME_COST": "1",
           "PSC119_AUTH_ARGON2_MEMORY_KIB": "8192", "PSC119_SERVER_LOG_LEVEL": "WARNING", **extra_env}
    return await start_psc119(["--demo"], env)


async def stop_server(proc: asyncio.subprocess.Process) -> None:
    proc.terminate()
    await asyncio.wait_for(proc.wait(), 30)


async def login(url: str) -> str:
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{url}/api/auth/login", json={"username": "operator", "password": "demo119"}) as r:
            return str((await r.json())["token"])


def socket_url(url: str, token: str) -> str:
    return url.replace("http://", "ws://") + f"/ws/events?token={token}"


async def round_trips(ws: websockets.ClientConnection, count: int) -> list[float]:
    times = []
    for _ in range(count):
        await asyncio.sleep(CALM_EVERY_S)
        start = time.perf_counter()
        await ws.send('{"type": "ping"}')
        while json.loads(await ws.recv())["type"] != "pong":
            pass
        times.append((time.perf_counter() - start) * 1000)
    return times


async def calm_socket(url: str, token: str) -> websockets.ClientConnection:
    ws = await websockets.connect(socket_url(url, token))
    await ws.recv()  # hello
    return ws


def flood(url: str, token: str, pipelined: bool, stop: Any, result: Any) -> None:
    """In its own process, until ``stop``: ping as fast as the server answers (sequential), or as fast as
    the socket takes them while another task reads the answers (pipelined)."""

    async def run() -> tuple[int, int, int | None]:
        sent = received = 0
        async with websockets.connect(socket_url(url, token), max_queue=None) as ws:
            await ws.recv()

            async def reader() -> None:
                nonlocal received
                async for _ in ws:
                    received += 1

            task = asyncio.create_task(reader()) if pipelined else None
            try:
                while not stop.is_set() and not (task and task.done()):
                    await ws.send('{"type": "ping"}')
                    sent += 1
                    if task is None:
                        await ws.recv()
                        received += 1
                    else:
                        await asyncio.sleep(0)  # let the reader run, and notice a close
            except websockets.ConnectionClosed:
                pass
            if task is not None:
                task.cancel()
            return sent, received, ws.close_code

    result.put(asyncio.run(run()))


def summary(times: list[float]) -> tuple[float, float]:
    ordered = sorted(times)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


async def under_flood(url: str, token: str, pings: int, pipelined: bool) -> tuple[list[float], tuple[int, int, int | None]]:
    spawn = multiprocessing.get_context("spawn")
    stop, result = spawn.Event(), spawn.Queue()
    flooder = spawn.Process(target=flood, args=(url, token, pipelined, stop, result))
    calm = await calm_socket(url, token)  # opened first: under an unlimited flood a new socket may not get in at all
    flooder.start()
    await asyncio.sleep(1.0)  # the flood under way
    try:
        times = await round_trips(calm, pings)
    except websockets.ConnectionClosed as exc:
        print(f"calm socket lost under the flood: {exc}", file=sys.stderr)
        times = []
    finally:
        stop.set()
        await calm.close()
    outcome = await asyncio.to_thread(result.get, True, 60)
    flooder.join(10)
    return times, outcome


async def main(pings: int) -> None:
    var_dir = Path(tempfile.mkdtemp(prefix="psc119-bench-ws-"))
    try:
        rows: list[tuple[str, tuple[float, float] | None, tuple[int, int, int | None] | None]] = []
        for name, env in (("limits off", NO_LIMIT), ("limits on, 100/s", LIMIT)):
            proc, url = await start_server(var_dir, env)
            try:
                token = await login(url)
                if not rows:
                    calm = await calm_socket(url, token)
                    rows.append(("alone (baseline)", summary(await round_trips(calm, pings)), None))
                    await calm.close()
                for mode in ("sequential", "pipelined"):
                    times, flooded = await under_flood(url, token, pings, mode == "pipelined")
                    rows.append((f"{mode} flood, {name}", summary(times) if times else None, flooded))
            finally:
                await stop_server(proc)
        baseline = rows[0][1]
        assert baseline is not None
        base50, base99 = baseline
        print(f"calm socket: {pings} pings, one every {CALM_EVERY_S * 1000:g} ms; a second socket floods pings from another process")
        print(f"{'scenario':<34} {'p50 ms':>8} {'p99 ms':>8} {'p50 x':>7} {'p99 x':>7}  flooding socket")
        for label, figures, outcome in rows:
            flooder = "" if outcome is None else f"sent {outcome[0]}, got {outcome[1]} replies, close code {outcome[2]}"
            if figures is None:
                print(f"{label:<34} {'calm socket lost':>34}  {flooder}")
                continue
            p50, p99 = figures
            print(f"{label:<34} {p50:8.2f} {p99:8.2f} {p50 / base50:7.1f} {p99 / base99:7.1f}  {flooder}")
        emit(*(
            Row(f"calm socket ping p99, {label} ({pings} pings)", None if figures is None else figures[1], base99,
                "the same socket alone", "ms", "" if figures is not None else "calm socket lost")
            for label, figures, _ in rows[1:]
        ))
    finally:
        shutil.rmtree(var_dir, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pings", type=int, default=500)
    asyncio.run(main(parser.parse_args().pings))
