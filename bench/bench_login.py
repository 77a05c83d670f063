"""Benchmark: a real login and ``/api/me`` while 100 wrong logins arrive at once.

Starts the real server as its own process (``psc119 serve --demo`` with the
repository's config.toml, so production argon2 settings, and the embedded
PostgreSQL under a temporary directory), then measures, in the same run:

1. without a flood: ``/api/me`` latency (p50/p99) and a real login;
2. during a flood: ``--flood`` wrong logins sent at once from ``--spread``
   loopback addresses (1 = one attacker address, as in a single-source attack;
   100 = one address per guess, a distributed attack), with ``/api/me`` polled
   and the operator's real login started just after the flood, from the
   address she signed in from before (``--real-from usual``) or from one
   never seen (``--real-from new``).

It prints the figures and the ratios flood/no flood, and asserts only that
the answers have the expected statuses, never a time.

    python bench/bench_login.py [--flood 100] [--spread 1] [--real-from usual] [--me 300]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from typing import Any

import aiohttp
from results import Row, emit

from bench_support import start_psc119

PASSWORD = "demo119"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def start_server(var_dir: str) -> tuple[asyncio.subprocess.Process, str]:
    env = {**os.environ, "PSC119_SERVER_VAR_DIR": var_dir, "PSC119_SERVER_LOG_LEVEL": "ERROR"}
    return await start_psc119(["--demo"], env)


def client(source: str) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(source, 0), limit=0, force_close=True))


async def login(session: aiohttp.ClientSession, url: str, username: str, password: str) -> tuple[int, float, str | None]:
    started = time.perf_counter()
    async with session.post(f"{url}/api/auth/login", json={"username": username, "password": password}) as r:
        body = await r.json()
        return r.status, time.perf_counter() - started, body.get("token")


async def me_once(session: aiohttp.ClientSession, url: str, token: str) -> float:
    started = time.perf_counter()
    async with session.get(f"{url}/api/me", headers={"Authorization": f"Bearer {token}"}) as r:
        assert r.status == 200, r.status
        await r.read()
    return time.perf_counter() - started


async def me_until(session: aiohttp.ClientSession, url: str, token: str, done: asyncio.Future[Any], least: int) -> list[float]:
    samples: list[float] = []
    while not done.done() or len(samples) < least:
        samples.append(await me_once(session, url, token))
    return samples


def line(name: str, samples: list[float]) -> str:
    return f"{name}: p50 {percentile(samples, 50) * 1000:7.1f} ms  p99 {percentile(samples, 99) * 1000:7.1f} ms  ({len(samples)} requests)"


async def bench(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="psc119-bench-login-") as var_dir:
        proc, url = await start_server(var_dir)
        me_client, real_client = client("127.0.0.1"), client("127.0.0.2")
        attackers = [client(f"127.0.9.{i % 250 + 1}") for i in range(args.spread)]
        try:
            status, _, token = await login(me_client, url, "operator", PASSWORD)
            assert status == 200 and token
            quiet_logins = []
            for _ in range(3):  # the operator at her usual console
                status, took, _ = await login(real_client, url, "operator", PASSWORD)
                assert status == 200, status
                quiet_logins.append(took)
            if args.real_from == "new":
                await real_client.close()
                real_client = client("127.0.0.3")
            for _ in range(50):  # warm up: connections, plans, caches
                await me_once(me_client, url, token)
            quiet = [await me_once(me_client, url, token) for _ in range(args.me)]

            guesses = [login(attackers[i % args.spread], url, f"guess{i}", "wrong-password") for i in range(args.flood)]
            flood_started = time.perf_counter()
            flood = asyncio.ensure_future(asyncio.gather(*guesses))
            await asyncio.sleep(0.05)  # the flood is in: the real operator arrives behind it
            real = asyncio.ensure_future(login(real_client, url, "operator", PASSWORD))
            during = await me_until(me_client, url, token, flood, least=args.me // 3)
            results = await flood
            flood_s = time.perf_counter() - flood_started
            real_status, real_s, _ = await real
        finally:
            for session in (me_client, real_client, *attackers):
                await session.close()
            proc.terminate()
            await proc.wait()

    statuses = sorted({s for s, _, _ in results})
    counts = {s: sum(1 for r in results if r[0] == s) for s in statuses}
    print(f"flood: {args.flood} wrong logins at once from {args.spread} address(es); answers {counts} in {flood_s:.2f} s")
    print(f"real login, no flood:     {statistics.median(quiet_logins) * 1000:7.0f} ms (median of {len(quiet_logins)})")
    print(f"real login, during flood: {real_s * 1000:7.0f} ms (status {real_status})")
    print(line("/api/me, no flood    ", quiet))
    print(line("/api/me, during flood", during))
    print(f"ratio during/no flood: p50 {percentile(during, 50) / percentile(quiet, 50):.1f}x  "
          f"p99 {percentile(during, 99) / percentile(quiet, 99):.1f}x")
    emit(
        Row(f"/api/me p99 during {args.flood} wrong logins", percentile(during, 99) * 1000, percentile(quiet, 99) * 1000,
            "no flood", "ms"),
        Row(f"real login during {args.flood} wrong logins", real_s * 1000, statistics.median(quiet_logins) * 1000,
            "no flood (median)", "ms"),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--flood", type=int, default=100, help="wrong logins sent at once")
    parser.add_argument("--spread", type=int, default=1, help="loopback source addresses the flood comes from")
    parser.add_argument("--real-from", choices=("usual", "new"), default="usual", help="where the real login comes from")
    parser.add_argument("--me", type=int, default=300, help="/api/me requests measured without the flood")
    asyncio.run(bench(parser.parse_args()))


if __name__ == "__main__":
    main()
