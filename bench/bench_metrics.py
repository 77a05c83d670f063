"""Benchmark: what the metrics cost a request, and what a scrape costs.

A GET of ``/healthz`` on the real app in this process, over loopback, with the
latency middleware timing it and with that middleware's observation turned into a
no-op (the baseline, measured in the same process): requests per second and the ratio.
Then the text a scrape generates once every route has a few statuses: its size and
the milliseconds to produce it.

    python bench/bench_metrics.py [--requests 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from unittest import mock

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client import Histogram, generate_latest
from results import Row, emit

from server.app import create_app
from server.config import Config
from server.keys import ENDPOINTS, METRICS


def app_without_database() -> web.Application:
    """The real app and middlewares; only the database-backed contexts are left out (/healthz needs none)."""
    app = create_app(Config(), "postgresql://unused/x")
    app.cleanup_ctx.clear()
    app.on_shutdown.clear()
    return app


async def rate(session: aiohttp.ClientSession, url: str, requests: int) -> float:
    start = time.perf_counter()
    for _ in range(requests):
        async with session.get(url) as response:
            await response.read()
    return requests / (time.perf_counter() - start)


async def main(requests: int) -> None:
    app = app_without_database()
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    url = str(server.make_url("/healthz"))
    metrics = app[METRICS]
    async with aiohttp.ClientSession() as session:
        await rate(session, url, 200)  # warm up
        timed, baseline = [], []
        for _ in range(3):
            timed.append(await rate(session, url, requests))
            with mock.patch.object(Histogram, "observe", lambda self, amount, exemplar=None: None):
                baseline.append(await rate(session, url, requests))
    await server.close()
    best_timed, best_base = max(timed), max(baseline)
    print(f"{'GET /healthz':<28}{'req/s timed':>14}{'req/s baseline':>16}{'ratio':>8}")
    print(f"{'':<28}{best_timed:>14.0f}{best_base:>16.0f}{best_timed / best_base:>8.3f}")
    print(f"cost per request: {(1 / best_timed - 1 / best_base) * 1e6:.1f} µs")
    emit(Row(f"GET /healthz with request metrics ({requests} requests)", best_timed, best_base, "metrics observation off", "req/s"))

    for endpoint in app[ENDPOINTS]:
        for status in ("200", "401", "403", "404", "422"):
            metrics.http_seconds.labels(endpoint.path, endpoint.method, status).observe(0.01)
    start = time.perf_counter()
    repeat = 20
    for _ in range(repeat):
        text = generate_latest(metrics.registry)
    took = (time.perf_counter() - start) / repeat * 1e3
    print(f"scrape: {len(app[ENDPOINTS])} routes x 5 statuses, {len(text) / 1024:.0f} KB of text, {took:.1f} ms to generate")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    asyncio.run(main(parser.parse_args().requests))
