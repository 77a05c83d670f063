"""Benchmark: how long an aiortc doctor takes to join a consult's room across a weak signaling link.

Starts an embedded PostgreSQL with the demo region and the real app on 127.0.0.1. Each round opens a
consult (requested, accepted), starts the specialist's aiortc peer directly, then the puskesmas's
aiortc peer, and times, from the puskesmas peer's start: the room's ``welcome``, and the peer
connection ``connected``. The puskesmas peer joins once over a direct loopback link (the baseline)
and once through the tests' link proxy with ``--delay-ms`` each way and ``--rate-kbps`` each way
(default: 150 ms each way, i.e. 300 ms round trip, at 300 kbit/s), alternating, in the same process.

It prints seconds (median, max) and the ratios to the baseline; it asserts nothing about time.
Run it inside ``unshare -n`` (WebRTC on loopback only):

    unshare -n sh -c 'ip link set lo up && exec .venv/bin/python bench/bench_consult_join.py [--rounds 5]'
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import uuid
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from results import Row, emit  # noqa: E402

from bench_support import demo_database  # noqa: E402
from server import demo_region  # noqa: E402
from server.app import create_app  # noqa: E402
from server.config import AuthSettings, Config, DatabaseSettings  # noqa: E402
from signaling.media import SyntheticSource  # noqa: E402
from signaling.peer import ConsultPeer  # noqa: E402
from tests.impair.tcp import LinkProxy  # noqa: E402

AUTH = AuthSettings(argon2_time_cost=1, argon2_memory_kib=8192)
PATIENT = {"age": 58, "sex": "male", "chief_complaint": "nyeri dada", "question": "STEMI?"}
LOOPBACK = ["127.0.0.1"]


async def call(http: aiohttp.ClientSession, base: str, method: str, path: str, token: str | None = None, **kw: Any) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with http.request(method, base + path, headers=headers, **kw) as response:
        body = await response.json()
        if response.status >= 300:
            raise RuntimeError(f"{method} {path}: {response.status} {body}")
        return body


async def open_consult(http: aiohttp.ClientSession, base: str) -> tuple[str, str, str]:
    """A new accepted consult: (id, the puskesmas's join token, the specialist's)."""
    login = {"password": demo_region.DEMO_PASSWORD}
    pk = (await call(http, base, "POST", "/api/auth/login", json={"username": "puskesmas", **login}))["token"]
    sp = (await call(http, base, "POST", "/api/auth/login", json={"username": "specialist", **login}))["token"]
    await call(http, base, "PUT", "/api/oncall", sp, json={"specialty": "jantung", "on_call": True})
    body = {"idempotency_key": uuid.uuid4().hex, "service": "tele_ekg", "specialty": "jantung", "urgency": "emergency", "patient": PATIENT}
    consult_id = (await call(http, base, "POST", "/api/consults", pk, json=body))["consult"]["id"]
    await call(http, base, "POST", f"/api/consults/{consult_id}/accept", sp)
    tokens = [(await call(http, base, "POST", f"/api/consults/{consult_id}/join", t))["token"] for t in (pk, sp)]
    return consult_id, tokens[0], tokens[1]


async def one_join(http: aiohttp.ClientSession, base: str, port: int) -> tuple[float, float]:
    """Seconds from the puskesmas peer's start to its welcome and to connected, joining through ``port``."""
    consult_id, pk_token, sp_token = await open_consult(http, base)
    path = f"/ws/consults/{consult_id}"
    specialist = ConsultPeer(base.replace("http://", "ws://") + path, sp_token, source=SyntheticSource(160, 120), ice_host_addresses=LOOPBACK)
    puskesmas = ConsultPeer(f"ws://127.0.0.1:{port}{path}", pk_token, source=SyntheticSource(160, 120), ice_host_addresses=LOOPBACK)
    tasks = [asyncio.create_task(specialist.run())]
    try:
        await specialist.wait_until(lambda: specialist.welcome is not None, 10)
        tasks.append(asyncio.create_task(puskesmas.run()))
        await puskesmas.wait_until(lambda: puskesmas.stats.first_connected_at is not None, 20)
        stats = puskesmas.stats
        assert stats.first_welcome_at is not None and stats.first_connected_at is not None
        return stats.first_welcome_at - stats.started_at, stats.first_connected_at - stats.started_at
    finally:
        for peer in (puskesmas, specialist):
            await peer.stop()
        await asyncio.wait_for(asyncio.gather(*tasks), 10)


def figures(label: str, values: list[float], baseline: list[float]) -> str:
    ratio = statistics.median(values) / statistics.median(baseline)
    return f"{label}: median {statistics.median(values):.2f} s, max {max(values):.2f} s ({ratio:.1f}x the direct link)"


async def run(rounds: int, delay_ms: float, rate_kbps: int) -> None:
    async with demo_database("psc119-bench-join-") as (_, dsn):
        runner = web.AppRunner(create_app(Config(database=DatabaseSettings(url=dsn), auth=AUTH), dsn))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        base = f"http://127.0.0.1:{port}"
        results: dict[str, list[tuple[float, float]]] = {"direct": [], "weak": []}
        try:
            async with aiohttp.ClientSession() as http, LinkProxy(port, delay_s=delay_ms / 1000, rate_bps=rate_kbps * 1000) as weak:
                for _ in range(rounds):
                    results["direct"].append(await one_join(http, base, port))
                    results["weak"].append(await one_join(http, base, weak.port))
        finally:
            await runner.cleanup()
    print(f"{rounds} joins each; weak link: {delay_ms:.0f} ms each way, {rate_kbps} kbit/s each way")
    rows = []
    for index, what in enumerate(("welcome", "connected")):
        direct = [r[index] for r in results["direct"]]
        weak = [r[index] for r in results["weak"]]
        print(f"  direct  -> {what}: median {statistics.median(direct):.3f} s, max {max(direct):.3f} s")
        print("  " + figures(f"weak    -> {what}", weak, direct))
        rows.append(Row(f"consult join → {what}, {delay_ms:.0f} ms each way, {rate_kbps} kbit/s (median)",
                        statistics.median(weak), statistics.median(direct), "the same join on a direct link", "s"))
    emit(*rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--delay-ms", type=float, default=150.0)
    parser.add_argument("--rate-kbps", type=int, default=300)
    args = parser.parse_args()
    asyncio.run(run(args.rounds, args.delay_ms, args.rate_kbps))


if __name__ == "__main__":
    main()
