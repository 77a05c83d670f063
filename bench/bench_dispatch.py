"""Benchmark: the dispatch path, a dispatch POST until ``unit.dispatched`` is on the unit's socket.

Runs a real ``psc119 serve`` (its own process, on an embedded PostgreSQL holding the demo region) with
``--units`` crews, each with its unit socket open. One worker per unit loops ``--calls`` times: record a call,
dispatch its unit (timed from the POST to the event on the unit's socket), withdraw it. Then, the same run,
the same loop against two baselines (`bench/baseline_servers.py`), each its own process: a bare aiohttp
server forwarding the POST to the unit's socket, and aiohttp with a PostgreSQL insert + NOTIFY per call.
Prints p50/p99 in milliseconds and calls per second with the ratios; asserts no timings.

    python bench/bench_dispatch.py [--units 20] [--calls 10]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import websockets
from results import Row, emit

from bench_support import CREW_PASSWORD, Running, add_crew, baseline_server, demo_server, login, migrated_database, percentile
from server import db


class UnitSocket:
    """A unit's socket; a dispatch it receives settles the future waiting for its ``key`` (any, for key None:
    a worker waits for one dispatch at a time)."""

    def __init__(self, ws: websockets.ClientConnection, key: str | None) -> None:
        self.ws = ws
        self.key = key
        self.waiting: dict[Any, asyncio.Future[float]] = {}
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self.ws:
            message = json.loads(raw)
            if message.get("type") == "event" and message.get("event") == "unit.dispatched":
                future = self.waiting.pop(None if self.key is None else message["data"].get(self.key), None)
                if future is not None and not future.done():
                    future.set_result(time.perf_counter())

    def expect(self, value: Any) -> asyncio.Future[float]:
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.waiting[value] = future
        return future


async def run_workers(units: list[str], calls: int, cycle: Callable[[str], Awaitable[float]]) -> tuple[list[float], float]:
    """Every unit's worker runs ``calls`` cycles at once; (the latencies in ms, calls per second)."""
    latencies: list[float] = []

    async def worker(unit: str) -> None:
        for _ in range(calls):
            latencies.append(await cycle(unit))

    started = time.perf_counter()
    await asyncio.gather(*(worker(u) for u in units))
    return latencies, len(latencies) / (time.perf_counter() - started)


@dataclasses.dataclass(frozen=True, slots=True)
class Fleet:
    units: list[str]
    bases: dict[str, dict[str, float]]
    call_type: str  # one that any unit may serve alone: basic life support, no transport


async def add_crews(dsn: str, count: int) -> Fleet:
    con = await db.connect(dsn)
    try:
        rows = await con.fetch("SELECT id, base_lat, base_lon FROM units WHERE status = 'available' ORDER BY id LIMIT $1", count)
        for row in rows:
            await add_crew(con, row["id"])
        call_type = await con.fetchval("SELECT code FROM triage_types WHERE capabilities = '{bls}' ORDER BY code LIMIT 1")
        if call_type is None:
            raise RuntimeError("no call type that needs basic life support only")
        bases = {r["id"]: {"lat": r["base_lat"], "lon": r["base_lon"]} for r in rows}
        return Fleet([r["id"] for r in rows], bases, call_type)
    finally:
        await con.close()


async def psc119(server: Running, fleet: Fleet, calls: int) -> tuple[list[float], float]:
    units = fleet.units
    ws_url = server.url.replace("http://", "ws://")
    operator = await login(server.url, "operator", "demo119")
    sockets = {}
    for unit in units:
        token = await login(server.url, f"crew-{unit}", CREW_PASSWORD)
        ws = await websockets.connect(f"{ws_url}/ws/unit?token={token}", max_queue=None)
        await ws.recv()  # hello
        sockets[unit] = UnitSocket(ws, None)
    headers = {"Authorization": f"Bearer {operator}"}
    async with aiohttp.ClientSession(headers=headers) as http:

        async def post(path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
            async with http.post(server.url + path, json=body) as r:
                answer: dict[str, Any] = await r.json()
                if r.status not in (200, 201):
                    raise RuntimeError(f"{path}: {r.status} {answer}")
                return answer

        async def cycle(unit: str) -> float:
            call = await post("/api/calls", {
                "idempotency_key": str(uuid.uuid4()), "phone": f"08{uuid.uuid4().int % 10**10:010d}",
                "location": fleet.bases[unit], "address": "Jl. Benchmark 1", "call_type": fleet.call_type, "complaint": "sesak",
            })
            incident = call["incident"]["id"]
            started = time.perf_counter()
            socket = sockets[unit]
            arrived = socket.expect(None)  # the assignment id is known only from the answer, maybe after the event
            answer = await post(f"/api/incidents/{incident}/dispatch", {"unit_id": unit})
            assignment = answer["assignment"]["id"]
            took = (await asyncio.wait_for(arrived, 30) - started) * 1000
            await post(f"/api/incidents/{incident}/assignments/{assignment}/cancel")
            return took

        try:
            return await run_workers(units, calls, cycle)
        finally:
            for socket in sockets.values():
                await socket.ws.close()


async def baseline(url: str, units: list[str], calls: int) -> tuple[list[float], float]:
    ws_url = url.replace("http://", "ws://")
    sockets = {u: UnitSocket(await websockets.connect(f"{ws_url}/ws/unit?unit={u}", max_queue=None), "call") for u in units}
    await asyncio.sleep(0.2)  # every socket registered
    async with aiohttp.ClientSession() as http:

        async def cycle(unit: str) -> float:
            call = str(uuid.uuid4())
            arrived = sockets[unit].expect(call)
            started = time.perf_counter()
            async with http.post(f"{url}/dispatch", json={"unit": unit, "call": call, "address": "Jl. Benchmark 1"}) as r:
                if r.status != 201:
                    raise RuntimeError(f"baseline dispatch: {r.status}")
            return (await asyncio.wait_for(arrived, 30) - started) * 1000

        try:
            return await run_workers(units, calls, cycle)
        finally:
            for socket in sockets.values():
                await socket.ws.close()


def figures(name: str, latencies: list[float], rate: float) -> tuple[float, float, float]:
    p50, p99 = statistics.median(latencies), percentile(latencies, 99)
    print(f"{name:<44} p50 {p50:7.2f} ms  p99 {p99:7.2f} ms  {rate:8.1f} calls/s  ({len(latencies)} calls)")
    return p50, p99, rate


async def main(units_n: int, calls: int) -> None:
    async with demo_server("psc119-bench-dispatch-") as server:
        fleet = await add_crews(server.dsn, units_n)
        ours = figures("psc119 (intake, dispatch, withdraw)", *await psc119(server, fleet, calls))
    units = fleet.units
    async with baseline_server("forward") as (url, _pid):
        bare = figures("bare aiohttp forwarding", *await baseline(url, units, calls))
    async with migrated_database("psc119-bench-notify-") as (_root, dsn), baseline_server("notify", dsn) as (url, _pid):
        notify = figures("aiohttp + PostgreSQL insert/NOTIFY", *await baseline(url, units, calls))
    size = f"{len(units)} unit sockets × {calls} calls"
    rows = []
    for base, base_name in ((bare, "bare aiohttp forward"), (notify, "aiohttp + PG insert/NOTIFY")):
        rows += [
            Row(f"dispatch POST → unit socket p50 ({size})", ours[0], base[0], base_name, "ms"),
            Row(f"dispatch POST → unit socket p99 ({size})", ours[1], base[1], base_name, "ms"),
            Row(f"calls/s, psc119 intake+dispatch+withdraw ({size})", ours[2], base[2], base_name, "calls/s"),
        ]
    emit(*rows)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--units", type=int, default=20, help="unit sockets, one worker each")
    parser.add_argument("--calls", type=int, default=10, help="calls per unit")
    args = parser.parse_args()
    asyncio.run(main(args.units, args.calls))
