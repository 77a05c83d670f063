"""Benchmark: the dispatch path under a centre's load, a dispatch POST until ``unit.dispatched`` is on the unit's socket.

Open loop (the default; `bench/dispatch_load.py`): ``--sockets`` unit phones on their sockets, each sending a GPS
fix every 5 s, and calls arriving at ``--rate`` a second whatever the answers, each through its whole life (record,
dispatch the recommended top unit, acknowledge, on scene, available, close), on a real ``psc119 serve`` (its own
process, on an embedded PostgreSQL holding the demo region). Reports dispatch → unit socket p50/p99, missed
dispatches and the server's CPU at that rate; then the ceiling, the calls/s of ``--ladder`` at which the p99 crosses
100 ms, for one process and for two on the same database (sockets and calls shared between them). The same
sockets and rate, in the same run, against two baselines (`bench/baseline_servers.py`): a bare aiohttp server
forwarding the POST to the unit's socket, and aiohttp with a PostgreSQL insert + NOTIFY per call. Also ``POST
/api/calls`` answered sequentially against ``GET /api/me``. ``--history``: a year of calls in the database first
(`bench/history.py`), as a server in service has (`make bench` runs it so).

Every commit waits for the disk's flush, so beside each window the database's disk is timed flushing a block
(`bench/disk_flush.py`); and one more window each, psc119 and the NOTIFY baseline, runs with commits not waiting
for the flush (``synchronous_commit = off`` on the benchmark's own database): what is left there is the server's
and the machine's, not the disk's. A measurement only: psc119 is never run so.

``--closed``: the older closed loop, one worker per unit (``--units``, ``--calls`` each): record, dispatch, withdraw.
Prints the figures and their ratios; asserts no timings.

    python bench/bench_dispatch.py [--sockets 2000] [--rate 50] [--seconds 60] [--ladder 10,25,...] [--step 15] [--history]
    python bench/bench_dispatch.py --closed [--units 20] [--calls 10]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import math
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import disk_flush
import dispatch_load as load
import history
import websockets
from prometheus_client.parser import text_string_to_metric_families
from results import Row, emit

from bench_support import (
    CREW_PASSWORD,
    Running,
    add_crew,
    baseline_server,
    demo_database,
    demo_server,
    login,
    migrated_database,
    percentile,
    serve,
)
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


async def closed_main(units_n: int, calls: int) -> None:
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


def _scene(n: int, count: int, apart: bool) -> dict[str, float]:
    """The ``n``-th call's place: 11 m after the one before (each a duplicate of the open ones within 300 m), or
    ``apart``, on a grid over the city at least 600 m apart (none a duplicate)."""
    if not apart:
        return {"lat": -6.30 + n * 1e-4, "lon": 106.70}
    side = math.ceil(math.sqrt(count))
    step = 0.12 / side
    return {"lat": -6.36 + (n // side) * step, "lon": 106.64 + (n % side) * step}


async def crowd(dsn: str, count: int) -> None:
    """``count`` open incidents away from every call `_scene` places, as a flood leaves a centre: none a duplicate."""
    con = await db.connect(dsn)
    try:
        await con.execute(
            """INSERT INTO incidents (id, idempotency_key, request_digest, caller_phone, priority, lat, lon)
               SELECT gen_random_uuid(), 'crowd-' || gen_random_uuid(), 'bench', '0800' || n, 'kuning',
                      -6.50 - (n % 40) * 0.005, 106.50 + (n / 40) * 0.005
               FROM generate_series(1, $1) AS n""",
            count,
        )
    finally:
        await con.close()


async def sequential(server: Running, count: int, apart: bool = False, crowded: int = 0) -> tuple[float, float]:
    """Median ms of ``POST /api/calls`` and of ``GET /api/me``, one request at a time, interleaved; with ``crowded``
    incidents open elsewhere."""
    if crowded:
        await crowd(server.dsn, crowded)
    token = await login(server.url, "operator", "demo119")
    created, me = [], []
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        for n in range(count):
            body = {"idempotency_key": uuid.uuid4().hex, "phone": f"0813{n:08d}", "location": _scene(n, count, apart),
                    "address": "Jl. Urut 1", "complaint": "sesak"}
            started = time.perf_counter()
            async with http.post(f"{server.url}/api/calls", json=body) as r:
                await r.read()
                if r.status != 201:
                    raise RuntimeError(f"call: {r.status}")
            created.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            async with http.get(f"{server.url}/api/me") as r:
                await r.read()
            me.append((time.perf_counter() - started) * 1000)
        # Close them: open incidents near each other would flag the load's calls as duplicates.
        con = await db.connect(server.dsn)
        try:
            await con.execute("UPDATE incidents SET status = 'closed', outcome = 'information', closed_at = now() WHERE closed_at IS NULL")
        finally:
            await con.close()
    name = "POST /api/calls, sequential" + (", apart" if apart else "") + (f", {crowded} open" if crowded else "")
    print(f"{name:<44} p50 {statistics.median(created):7.2f} ms   GET /api/me p50 {statistics.median(me):7.2f} ms")
    return statistics.median(created), statistics.median(me)


def unit_urls(servers: list[Running], fleet: load.LoadFleet) -> dict[str, tuple[str, dict[str, float]]]:
    """Each unit's socket URL, the units shared in turn between the servers."""
    return {
        unit: (servers[n % len(servers)].url.replace("http://", "ws://") + f"/ws/unit?token={token}", base)
        for n, (unit, (token, base)) in enumerate(fleet.crews.items())
    }


async def psc119_load(
    servers: list[Running], fleet: load.LoadFleet, args: argparse.Namespace, rate: float | None, ladder: bool = True, label: str = "",
) -> tuple[load.Window | None, FullCollections | None, float | None]:
    """On these servers with every phone open: the window at ``rate`` (if any) and the full garbage collections
    in it, then the ladder's ceiling (if ``ladder``)."""
    phones = await load.open_phones(unit_urls(servers, fleet), key="incident_id")
    consoles = [await websockets.connect(s.url.replace("http://", "ws://") + f"/ws/operator?token={await login(s.url, 'operator', 'demo119')}",
                                         max_queue=None) for s in servers]
    drains = [asyncio.create_task(_drain(ws)) for ws in consoles]  # the consoles' feeds go somewhere, as in a centre
    pids, name = [s.pid for s in servers], f"psc119, {len(servers)} process{'es' if len(servers) > 1 else ''}{label}"
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            tokens = [await login(s.url, "operator", "demo119") for s in servers]
            calls = load.Psc119Calls(http, [s.url for s in servers], tokens, phones, fleet)
            window = full_gc = None
            # The window measures a centre's steady load: every phone has sent its first fix (each starts at a
            # random moment of its first period), and the server has answered the connections' own burst.
            await asyncio.sleep(load.FIX_EVERY_S)
            if rate is not None:
                collected = [await full_collections(http, s.url) for s in servers]
                window = await load.open_loop(rate, args.seconds, calls, pids, database=servers[0].root)
                print(window.line(name))
                full_gc = FullCollections.between(collected, [await full_collections(http, s.url) for s in servers])
                print(f"  full garbage collections in the window: {full_gc}")
                if window.errors:
                    print("  first errors:", window.errors[:3])
                await asyncio.sleep(1.0)
            if not ladder:
                return window, full_gc, None
            print(f"{name}: ceiling ladder {args.ladder}")
            crossing = await load.ceiling(args.ladder, args.step, calls, pids, print, database=servers[0].root)
            return window, full_gc, crossing
    finally:
        for task in drains:
            task.cancel()
        for ws in consoles:
            await ws.close()
        if duplicates := sum(p.duplicates for p in phones.values()):
            print(f"  {duplicates} dispatches delivered twice")
        if closes := [code for p in phones.values() for code in p.closes]:
            print(f"  {len(closes)} phone sockets closed by the server and opened again (codes {sorted(set(map(str, closes)))})")
        await asyncio.gather(*(p.close() for p in phones.values()))


@dataclasses.dataclass(frozen=True)
class FullCollections:
    """The server's full garbage collections (``psc119_gc_pause_seconds{generation="2"}``): how many, their total
    pause, and the least histogram bound the longest stayed under."""

    count: float
    seconds: float
    cumulative: dict[float, float]  # bound -> collections that took at most that long

    @classmethod
    def between(cls, before: list[FullCollections], after: list[FullCollections]) -> FullCollections:
        """What the servers did from ``before`` to ``after``, summed over them."""
        bounds = set().union(*(a.cumulative for a in after))  # a server that has not collected yet has no buckets
        return cls(sum(a.count - b.count for a, b in zip(after, before, strict=True)),
                   sum(a.seconds - b.seconds for a, b in zip(after, before, strict=True)),
                   {le: sum(a.cumulative.get(le, 0) - b.cumulative.get(le, 0) for a, b in zip(after, before, strict=True)) for le in bounds})

    @property
    def mean_ms(self) -> float:
        return self.seconds / self.count * 1000 if self.count else 0.0

    @property
    def longest_under_ms(self) -> float:
        if not self.count:
            return 0.0
        return min((le for le, n in self.cumulative.items() if n >= self.count), default=math.inf) * 1000

    def __str__(self) -> str:
        return f"{self.count:g}, mean {self.mean_ms:.1f} ms, the longest under {self.longest_under_ms:g} ms"


async def full_collections(http: aiohttp.ClientSession, url: str) -> FullCollections:
    async with http.get(f"{url}/metrics") as r:
        text = await r.text()
    count = seconds = 0.0
    cumulative = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if not sample.name.startswith("psc119_gc_pause_seconds") or sample.labels.get("generation") != "2":
                continue
            if sample.name.endswith("_count"):
                count = sample.value
            elif sample.name.endswith("_sum"):
                seconds = sample.value
            elif sample.name.endswith("_bucket"):
                cumulative[float(sample.labels["le"])] = sample.value
    return FullCollections(count, seconds, cumulative)


async def _drain(ws: websockets.ClientConnection) -> None:
    with contextlib.suppress(websockets.ConnectionClosed):
        async for _ in ws:
            pass


async def baseline_load(
    url: str, pid: int, fleet: load.LoadFleet, args: argparse.Namespace, ladder: bool, database: Path | None = None,
) -> tuple[load.Window, float | None]:
    ws_url = url.replace("http://", "ws://")
    phones = await load.open_phones({u: (f"{ws_url}/ws/unit?unit={u}", base) for u, (_t, base) in fleet.crews.items()}, key="call")
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            calls = load.BaselineCalls(http, url, phones)
            window = await load.open_loop(args.rate, args.seconds, calls, [pid], database=database)
            crossing = None
            if ladder:
                await asyncio.sleep(1.0)
                crossing = await load.ceiling(args.ladder, args.step, calls, [pid], print, database=database)
            return window, crossing
    finally:
        await asyncio.gather(*(p.close() for p in phones.values()))


async def commits_not_waiting_for_the_disk(dsn: str) -> None:
    """From now on a new session on ``dsn`` commits without waiting for its WAL flush: the windows after it show
    what the server and the machine take beyond the disk (`disk_flush`). A measurement only: a server run so may
    lose what it answered as stored."""
    con = await db.connect(dsn)
    try:
        await con.execute(f"ALTER DATABASE {await con.fetchval('SELECT current_database()')} SET synchronous_commit = off")
    finally:
        await con.close()


def ceiling_figure(crossing: float | None, ladder: list[float]) -> tuple[float, str]:
    """The ceiling as a figure; one not reached is the ladder's top, said so."""
    return (crossing, "") if crossing is not None else (ladder[-1], f"p99 under {load.CROSSING_MS:.0f} ms up to {ladder[-1]:g} calls/s")


NOT_WAITING = ", commits not waiting for the disk"
UNFLUSHED = "synchronous_commit = off: what the server and the machine add beyond the disk, never a way to run it"
CROWD = 2_000  # incidents open elsewhere in the crowded pass


async def sequential_passes(server: Running, count: int) -> list[Row]:
    """The sequential rows: calls each near the ones before, calls apart, and calls apart with `CROWD` open elsewhere."""
    seq = await sequential(server, count)
    apart = await sequential(server, count, apart=True)
    crowded = await sequential(server, count, apart=True, crowded=CROWD)
    return [
        Row("POST /api/calls sequential p50 (target ≤ 3×)", seq[0], seq[1], "GET /api/me", "ms",
            "each call within 300 m of the open ones before it: up to 50 duplicate warnings each"),
        Row("POST /api/calls sequential p50, calls apart (no duplicate warnings)", apart[0], apart[1], "GET /api/me", "ms"),
        Row(f"POST /api/calls sequential p50, calls apart, {CROWD:,} other incidents open", crowded[0], crowded[1], "GET /api/me", "ms",
            "as in a flood: a call reads only the open incidents near it"),
    ]


async def sequential_main(count: int) -> None:
    """Only the sequential rows: no unit sockets, no load, no baselines."""
    async with demo_server("psc119-bench-calls-") as server:
        emit(*await sequential_passes(server, count))


async def open_main(args: argparse.Namespace) -> None:
    async with demo_database("psc119-bench-load-") as (root, dsn):
        fleet = await load.prepare(dsn, args.sockets)
        if args.history:
            print(f"a year of history written in {await history.add_year(dsn):.0f} s", flush=True)
        async with serve(root, dsn) as one:
            sequential_rows = await sequential_passes(one, args.sequential)
            window, full_gc, crossing1 = await psc119_load([one], fleet, args, args.rate)
        async with serve(root, dsn) as a, serve(root, dsn) as b:
            _, _, crossing2 = await psc119_load([a, b], fleet, args, None)
        await commits_not_waiting_for_the_disk(dsn)
        async with serve(root, dsn) as one:
            unflushed, _, _ = await psc119_load([one], fleet, args, args.rate, ladder=False, label=NOT_WAITING)
    assert window is not None and full_gc is not None and unflushed is not None
    async with baseline_server("forward") as (url, pid):
        bare, _ = await baseline_load(url, pid, fleet, args, ladder=False)
        print(bare.line("bare aiohttp forwarding"))
    async with migrated_database("psc119-bench-notify-") as (nroot, ndsn):
        async with baseline_server("notify", ndsn) as (url, pid):
            notify, notify_crossing = await baseline_load(url, pid, fleet, args, ladder=args.baseline_ladder, database=nroot)
            print(notify.line("aiohttp + PostgreSQL insert/NOTIFY"))
        await commits_not_waiting_for_the_disk(ndsn)
        async with baseline_server("notify", ndsn) as (url, pid):
            notify_unflushed, _ = await baseline_load(url, pid, fleet, args, ladder=False, database=nroot)
            print(notify_unflushed.line(f"aiohttp + PostgreSQL insert/NOTIFY{NOT_WAITING}"))
    flushed, notify_flushed = window.flush, notify.flush
    assert flushed is not None and notify_flushed is not None  # both windows measured their database
    size = f"{args.sockets} unit sockets, fix/5 s, {args.rate:g} calls/s{', a year of history' if args.history else ''}"
    c1, note1 = ceiling_figure(crossing1, args.ladder)
    c2, note2 = ceiling_figure(crossing2, args.ladder)
    cn, noten = ceiling_figure(notify_crossing, args.ladder) if args.baseline_ladder else (None, "baseline ladder in --full only")
    notify_name, bare_name = "aiohttp + PG insert/NOTIFY", "bare aiohttp forward"
    emit(
        Row(f"dispatch → unit socket p50 ({size})", window.p(50), notify.p(50), notify_name, "ms"),
        Row(f"dispatch → unit socket p99 ({size})", window.p(99), notify.p(99), notify_name, "ms"),
        Row(f"dispatch → unit socket p99 ({size})", window.p(99), bare.p(99), bare_name, "ms"),
        Row(f"missed dispatches ({size})", window.missed, notify.missed, notify_name, "calls"),
        Row(f"calls not dispatched when the window ended ({size})", window.unfinished, notify.unfinished, notify_name, "calls",
            "overload: counted beyond any latency in the p99"),
        Row(f"full garbage collection pause, mean ({size})", full_gc.mean_ms, None, "-", "ms",
            f"{full_gc.count:g} in the window, the longest under {full_gc.longest_under_ms:g} ms"),
        Row(f"server CPU ({size})", window.cpu_percent, notify.cpu_percent, notify_name, "% of a core"),
        Row(f"server CPU per call, its whole life ({size})", window.cpu_ms_per_call, notify.cpu_ms_per_call, notify_name, "ms"),
        Row(f"database CPU per call, its whole life ({size})", window.db_cpu_ms_per_call, notify.db_cpu_ms_per_call, notify_name, "ms",
            "every PostgreSQL process, the server's and the baseline's own"),
        Row(f"database disk flush p99 beside the window ({size})", flushed.p(99), notify_flushed.p(99), f"{notify_name}'s window", "ms",
            f"8 KiB fdatasync every {disk_flush.EVERY_S * 1000:g} ms beside the database; "
            f"longest {flushed.p(100):.0f} and {notify_flushed.p(100):.0f} ms"),
        Row(f"dispatch → unit socket p50{NOT_WAITING} ({size})", unflushed.p(50), notify_unflushed.p(50),
            f"{notify_name}, the same", "ms", UNFLUSHED),
        Row(f"dispatch → unit socket p99{NOT_WAITING} ({size})", unflushed.p(99), notify_unflushed.p(99),
            f"{notify_name}, the same", "ms", UNFLUSHED),
        Row(f"ceiling, 1 process: calls/s at p99 > 100 ms ({args.sockets} sockets)", c1, cn, notify_name, "calls/s",
            "; ".join(n for n in (note1, noten) if n)),
        Row(f"ceiling, 2 processes on one database ({args.sockets} sockets)", c2, c1, "psc119, 1 process", "calls/s", note2),
        *sequential_rows,
    )


def rates(text: str) -> list[float]:
    return [float(r) for r in text.split(",")]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sockets", type=int, default=2000, help="unit phones on their sockets")
    parser.add_argument("--rate", type=float, default=50.0, help="calls a second, whatever the answers")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long calls arrive at --rate")
    parser.add_argument("--ladder", type=rates, default=rates("10,25,50,75,100,150,200,300"), help="calls/s tried in turn for the ceiling")
    parser.add_argument("--step", type=float, default=15.0, help="seconds at each rate of the ladder")
    parser.add_argument("--sequential", type=int, default=300, help="sequential POST /api/calls (and GET /api/me)")
    parser.add_argument("--sequential-only", action="store_true", help="only POST /api/calls against GET /api/me, sequentially")
    parser.add_argument("--history", action="store_true", help="a year of calls in the database first (bench/history.py)")
    parser.add_argument("--no-baseline-ladder", dest="baseline_ladder", action="store_false", help="skip the NOTIFY baseline's ceiling")
    parser.add_argument("--closed", action="store_true", help="the closed loop instead")
    parser.add_argument("--units", type=int, default=20, help="--closed: unit sockets, one worker each")
    parser.add_argument("--calls", type=int, default=10, help="--closed: calls per unit")
    args = parser.parse_args()
    if args.sequential_only:
        asyncio.run(sequential_main(args.sequential))
    else:
        asyncio.run(closed_main(args.units, args.calls) if args.closed else open_main(args))
