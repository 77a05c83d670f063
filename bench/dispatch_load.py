"""Open-loop load on the dispatch path, as a PSC 119 centre makes it: thousands of unit phones on their sockets,
each sending a GPS fix every 5 s as the field app does, and calls arriving at a fixed rate whatever the answers.

Each call: record it (``POST /api/calls``), dispatch the recommended top unit (a 409 for a unit another call took
meanwhile moves to the fresh recommendation), time the dispatch POST until ``unit.dispatched`` is on that unit's
socket, then the crew acknowledges and reports on scene and available on its socket, and the operator closes the
incident. The same sockets and rate are run against the baselines (`bench/baseline_servers.py`), whose only step is
the dispatch. Server CPU is read from ``/proc``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import gc
import json
import os
import random
import time
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import aiohttp
import websockets
from disk_flush import FlushProbe

from bench_support import percentile
from server import db, incidents, sessions
from server.config import AuthSettings
from server.passwords import Passwords

FIX_EVERY_S = 5.0  # the field app's GPS interval
THINK_S = 0.3  # between a crew's reports: units stay busy a little, as they do
ARRIVAL_TIMEOUT_S = 10.0  # a call waits this long for its dispatch on the unit's socket, then goes on without it
SETTLE_S = 10.0  # after a window, how long a late dispatch may still arrive before it counts as missed
OPEN_AT_ONCE = 50  # sockets being opened at once
CROSSING_MS = 100.0  # the ceiling: the rate at which the p99 crosses this


@dataclasses.dataclass(frozen=True, slots=True)
class LoadFleet:
    """The units on duty, each with a crew session: {unit id: (token, base)}, and a call type any unit serves."""

    crews: dict[str, tuple[str, dict[str, float]]]
    call_type: str


async def prepare(dsn: str, count: int) -> LoadFleet:
    """``count`` units on duty (the demo's, then copies near their bases), each with a field_team session; the
    other units off duty, so every recommended unit has a phone on a socket."""
    con = await db.connect(dsn)
    try:
        demo = await con.fetch("SELECT id, kind, capabilities, base_lat, base_lon, kelurahan FROM units ORDER BY id")
        rng = random.Random(119)
        extra = []
        for n in range(max(0, count - len(demo))):
            u = demo[n % len(demo)]
            lat, lon = u["base_lat"] + rng.uniform(-0.01, 0.01), u["base_lon"] + rng.uniform(-0.01, 0.01)
            extra.append((f"load-{n}", f"LOAD-{n}", u["kind"], u["capabilities"], lat, lon, u["kelurahan"]))
        await con.executemany(
            """INSERT INTO units (id, callsign, kind, capabilities, base_lat, base_lon, kelurahan, status, position_lat,
                                  position_lon, position_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, 'available', $5, $6, now())""", extra,
        )
        rows = await con.fetch("SELECT id, base_lat, base_lon FROM units ORDER BY id LIMIT $1", count)
        chosen = [r["id"] for r in rows]
        await con.execute("UPDATE units SET status = CASE WHEN id = ANY($1) THEN 'available' ELSE 'off_duty' END", chosen)
        hashed = await Passwords(AuthSettings(argon2_time_cost=1, argon2_memory_kib=8192)).hash("load-crew-119")
        await con.executemany(
            "INSERT INTO users (username, role, unit_id, password_hash) VALUES ($1, 'field_team', $2, $3) ON CONFLICT DO NOTHING",
            [(f"load-crew-{u}", u, hashed) for u in chosen],
        )
        ids = {r["unit_id"]: r["id"] for r in await con.fetch("SELECT id, unit_id FROM users WHERE username LIKE 'load-crew-%'")}
        crews = {}
        for r in rows:
            token, _ = await sessions.create(con, ids[r["id"]], dt.timedelta(hours=24), None)
            crews[r["id"]] = (token, {"lat": r["base_lat"], "lon": r["base_lon"]})
        await incidents.seed_triage(con)  # as a server does at start-up
        call_type = await con.fetchval("SELECT code FROM triage_types WHERE capabilities = '{bls}' ORDER BY code LIMIT 1")
        if call_type is None:
            raise RuntimeError("no call type that needs basic life support only")
        return LoadFleet(crews, call_type)
    finally:
        await con.close()


class Phone:
    """A unit's phone on its socket: a fix every `FIX_EVERY_S`, dispatches noted by a key of their data, replies
    to its own requests matched by ``ref``; a socket the server closes is opened again from the last event seen
    (``?after=``), as the field app does, so a dispatch counts as missed only if it never comes."""

    def __init__(self, url: str, ws: websockets.ClientConnection, base: dict[str, float], key: str) -> None:
        self.url = url
        self.ws = ws
        self.last_id = 0
        self.closes: list[int | None] = []  # the close codes of the sockets the server closed
        self.closing = False
        self.base = base
        self.key = key  # the field of a dispatch's data that names what it is for
        self.waiting: dict[Any, asyncio.Future[float]] = {}
        self.arrived: dict[Any, float] = {}  # when each dispatch came, by key
        self.duplicates = 0
        self.replies: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.tasks = [asyncio.create_task(self._read()), asyncio.create_task(self._fixes())]

    async def _read(self) -> None:
        while True:
            try:
                async for raw in self.ws:
                    self._received(json.loads(raw))
            except websockets.ConnectionClosed:
                pass
            if self.closing:
                return
            self.closes.append(self.ws.close_code)
            await self._reopen()

    async def _reopen(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            try:
                self.ws = await websockets.connect(f"{self.url}&after={self.last_id}", max_queue=None, compression=None, open_timeout=60)
                return
            except (OSError, TimeoutError, websockets.InvalidHandshake):
                continue

    def _received(self, message: dict[str, Any]) -> None:
        if message.get("type") == "event":
            self.last_id = max(self.last_id, message.get("id", 0))
        elif message.get("type") == "hello":
            self.last_id = max(self.last_id, message.get("last_event_id", 0))
        if message.get("type") == "event" and message.get("event") == "unit.dispatched":
            key = message["data"].get(self.key)
            if key in self.arrived:
                self.duplicates += 1
            self.arrived.setdefault(key, time.perf_counter())
            future = self.waiting.pop(key, None)
            if future is not None and not future.done():
                future.set_result(time.perf_counter())
        elif "ref" in message and (reply := self.replies.pop(message["ref"], None)) is not None and not reply.done():
            reply.set_result(message)

    async def _fixes(self) -> None:
        await asyncio.sleep(random.uniform(0, FIX_EVERY_S))
        while True:
            lat, lon = self.base["lat"] + random.uniform(-0.002, 0.002), self.base["lon"] + random.uniform(-0.002, 0.002)
            with contextlib.suppress(websockets.ConnectionClosed):  # the reader opens it again
                await self.ws.send(json.dumps({"type": "position", "lat": lat, "lon": lon, "accuracy": 12}))
            await asyncio.sleep(FIX_EVERY_S)

    def expect(self, key: Any) -> asyncio.Future[float]:
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        if key in self.arrived:  # the event came before the answer told us what to wait for
            future.set_result(self.arrived[key])
        else:
            self.waiting[key] = future
        return future

    async def report(self, message: dict[str, Any]) -> dict[str, Any]:
        """An acknowledgement or status report, stamped with its id and time as the field app stamps each press."""
        ref = uuid.uuid4().hex
        reply: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.replies[ref] = reply
        stamped = {**message, "ref": ref, "report_id": f"r{ref}", "reported_at": dt.datetime.now(dt.UTC).isoformat()}
        await self.ws.send(json.dumps(stamped))
        answer = await asyncio.wait_for(reply, 30)
        if answer.get("type") != "ok":
            raise RuntimeError(f"{message['type']}: {answer}")
        return answer

    async def close(self) -> None:
        self.closing = True
        for task in self.tasks:
            task.cancel()
        await self.ws.close()


async def open_phones(urls: dict[str, tuple[str, dict[str, float]]], key: str) -> dict[str, Phone]:
    """A `Phone` per unit on ``urls`` ({unit: (socket URL, base)}), opened `OPEN_AT_ONCE` at a time, each greeted."""
    gate = asyncio.Semaphore(OPEN_AT_ONCE)

    async def open_one(url: str, base: dict[str, float]) -> Phone:
        async with gate:
            ws = await websockets.connect(url, max_queue=None, compression=None, open_timeout=60)
            hello = json.loads(await ws.recv())
            phone = Phone(url, ws, base, key)
            phone._received(hello)
            return phone

    opened = await asyncio.gather(*(open_one(url, base) for url, base in urls.values()))
    # The phones live through the run: frozen, this process's own full collections (80-400 ms at 500 phones on a
    # busy machine) no longer walk them, nor read late the dispatches they pause.
    gc.freeze()
    return dict(zip(urls, opened, strict=True))


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU the processes have used so far."""
    ticks = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def database_cpu_seconds(root: Path) -> float:
    """User + system CPU the PostgreSQL server under ``root`` has used so far: the postmaster, its backends and
    workers alive now, and those that have ended (counted into the postmaster when it reaped them)."""
    postmaster = int((root / "pgdata" / "postmaster.pid").read_text().split()[0])
    ticks = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile: reaped, so in the postmaster's children's time
            continue
        if int(entry.name) == postmaster:
            ticks += sum(int(f) for f in fields[11:15])
        elif int(fields[1]) == postmaster:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


@dataclasses.dataclass
class Window:
    """What one open-loop window measured."""

    rate: float
    latencies: list[float] = dataclasses.field(default_factory=list)  # dispatch POST → unit socket, ms
    missed: int = 0  # dispatched, never on the unit's socket (SETTLE_S after the window)
    unfinished: int = 0  # calls whose dispatch had not reached the unit when the window was given up: beyond any latency
    waiting: set[asyncio.Task[Any]] = dataclasses.field(default_factory=set)  # calls whose dispatch has not reached the unit yet
    late: list[tuple[Phone, Any, float]] = dataclasses.field(default_factory=list)  # (phone, key, when sent) past ARRIVAL_TIMEOUT_S
    conflicts: int = 0  # the top unit was taken by another call meanwhile
    failed: int = 0  # a step answered an error
    cpu_percent: float = 0.0
    cpu_ms_per_call: float = 0.0  # the servers' CPU over the window and its drain, per call started: steadier than latency on a shared machine
    db_cpu_ms_per_call: float | None = None  # the same for their PostgreSQL, when it is measured
    flush: FlushProbe | None = None  # the database's disk flushing beside the window, when it is measured
    errors: list[str] = dataclasses.field(default_factory=list)

    @property
    def dispatched(self) -> int:
        return len(self.latencies) + self.missed

    async def arrival(self, phone: Phone, key: Any, arrived: asyncio.Future[float], started: float) -> None:
        """Wait for a dispatch to reach the unit; one slower than `ARRIVAL_TIMEOUT_S` is settled after the window."""
        try:
            self.latencies.append((await asyncio.wait_for(arrived, ARRIVAL_TIMEOUT_S) - started) * 1000)
        except TimeoutError:
            self.late.append((phone, key, started))
        self.waiting.discard(_this_call())

    async def settle(self) -> None:
        """The late dispatches: their latency if they came at last, else missed; calls still waiting: unfinished."""
        deadline = time.perf_counter() + SETTLE_S
        while any(key not in phone.arrived for phone, key, _ in self.late) and time.perf_counter() < deadline:
            await asyncio.sleep(0.2)
        for phone, key, started in self.late:
            if key in phone.arrived:
                self.latencies.append((phone.arrived[key] - started) * 1000)
            else:
                self.missed += 1
        self.unfinished = len(self.waiting)

    def started(self) -> None:
        self.waiting.add(_this_call())

    def failed_with(self, exc: BaseException) -> None:
        self.waiting.discard(_this_call())
        self.failed += 1
        self.errors.append(str(exc)[:200])

    def p(self, q: float) -> float:
        """Latency percentile, with missed and unfinished dispatches counted as infinitely late."""
        values = self.latencies + [float("inf")] * (self.missed + self.unfinished)
        return percentile(values, q) if values else float("nan")

    def line(self, name: str) -> str:
        return (f"{name:<40} {self.rate:6.1f} calls/s  p50 {self.p(50):8.2f} ms  p99 {self.p(99):8.2f} ms  "
                f"cpu {self.cpu_percent:5.1f} % ({self.cpu_ms_per_call:5.2f} ms/call{self._db_cpu})  "
                f"{self.dispatched} dispatched, {self.missed} missed, "
                f"{self.unfinished} unfinished, {self.conflicts} conflicts, {self.failed} failed"
                + ("" if self.flush is None else f"; {self.flush.summary()}"))


    @property
    def _db_cpu(self) -> str:
        return "" if self.db_cpu_ms_per_call is None else f", database {self.db_cpu_ms_per_call:5.2f} ms/call"


def _this_call() -> asyncio.Task[Any]:
    task = asyncio.current_task()
    assert task is not None
    return task


Call = Callable[[Window], Coroutine[Any, Any, None]]


async def open_loop(
    rate: float, seconds: float, call: Call, pids: list[int], drain_s: float = 20.0, database: Path | None = None,
) -> Window:
    """Start ``call`` ``rate`` times a second for ``seconds`` whatever the answers; wait up to ``drain_s`` for
    the last ones. CPU is the servers' over the window and its drain, and their database's (under ``database``)."""
    window = Window(rate, flush=None if database is None else FlushProbe(database))
    with window.flush or contextlib.nullcontext():
        await _run_window(window, rate, seconds, call, pids, drain_s, database)
    await window.settle()
    return window


async def _run_window(
    window: Window, rate: float, seconds: float, call: Call, pids: list[int], drain_s: float, database: Path | None,
) -> None:
    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task[None]] = set()
    db0 = database_cpu_seconds(database) if database is not None else 0.0
    cpu0, t0 = cpu_seconds(pids), loop.time()
    for n in range(int(rate * seconds)):
        delay = t0 + n / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(call(window))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(set(tasks), timeout=drain_s)
    used = cpu_seconds(pids) - cpu0
    window.cpu_percent = 100 * used / (loop.time() - t0)
    window.cpu_ms_per_call = 1000 * used / max(1, int(rate * seconds))
    if database is not None:
        window.db_cpu_ms_per_call = 1000 * (database_cpu_seconds(database) - db0) / max(1, int(rate * seconds))
    for task in set(tasks):
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def ceiling(
    rates: list[float], seconds: float, call: Call, pids: list[int], say: Callable[[str], None], database: Path | None = None,
) -> float | None:
    """The first rate of ``rates`` whose p99 crosses `CROSSING_MS` (None: none did)."""
    for rate in rates:
        window = await open_loop(rate, seconds, call, pids, drain_s=10.0, database=database)
        say(window.line("  ladder"))
        if window.p(99) > CROSSING_MS:
            return rate
        await asyncio.sleep(1.0)  # units back on duty before the next step
    return None


class Psc119Calls:
    """The whole lifecycle of a call on psc119, the operator on ``urls`` in turn (one per process)."""

    def __init__(self, http: aiohttp.ClientSession, urls: list[str], tokens: list[str], phones: dict[str, Phone],
                 fleet: LoadFleet) -> None:
        self.http, self.urls, self.tokens, self.phones, self.fleet = http, urls, tokens, phones, fleet
        self.units = list(phones)
        self.turn = 0

    async def _post(self, n: int, path: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        async with self.http.post(self.urls[n] + path, json=body, headers={"Authorization": f"Bearer {self.tokens[n]}"}) as r:
            return r.status, await r.json()

    async def __call__(self, window: Window) -> None:
        n = self.turn = (self.turn + 1) % len(self.urls)
        window.started()
        try:
            await self._lifecycle(n, window)
        except (RuntimeError, aiohttp.ClientError, websockets.ConnectionClosed, TimeoutError) as exc:
            window.failed_with(exc)

    async def _lifecycle(self, n: int, window: Window) -> None:
        base = self.fleet.crews[random.choice(self.units)][1]
        scene = {"lat": base["lat"] + random.uniform(-0.005, 0.005), "lon": base["lon"] + random.uniform(-0.005, 0.005)}
        status, call = await self._post(n, "/api/calls", {
            "idempotency_key": uuid.uuid4().hex, "phone": f"08{random.randrange(10**10):010d}", "location": scene,
            "address": "Jl. Beban 1", "call_type": self.fleet.call_type, "complaint": "sesak",
        })
        if status != 201:
            raise RuntimeError(f"call: {status} {call}")
        incident = call["incident"]["id"]
        candidates = call["recommendations"]
        for _ in range(5):
            if not candidates:
                raise RuntimeError("no unit recommended")
            unit = candidates[0]["unit_id"]
            phone = self.phones[unit]
            arrived = phone.expect(incident)
            started = time.perf_counter()
            status, answer = await self._post(n, f"/api/incidents/{incident}/dispatch", {"unit_id": unit})
            if status == 409:
                phone.waiting.pop(incident, None)
                window.conflicts += 1
                candidates = answer.get("recommendations") or []
                continue
            if status != 201:
                raise RuntimeError(f"dispatch: {status} {answer}")
            await window.arrival(phone, incident, arrived, started)
            if incident not in phone.arrived:
                return  # late: the crew never saw it in time to answer
            break
        else:
            raise RuntimeError("every recommended unit was taken")
        assignment = answer["assignment"]["id"]
        await asyncio.sleep(THINK_S)
        await phone.report({"type": "ack", "assignment_id": assignment})
        await asyncio.sleep(THINK_S)
        await phone.report({"type": "status", "status": "on_scene", "assignment_id": assignment})
        await asyncio.sleep(THINK_S)
        await phone.report({"type": "status", "status": "available", "reason": "treated_on_scene", "assignment_id": assignment})
        status, closed = await self._post(n, f"/api/incidents/{incident}/close", {"outcome": "emergency"})
        if status != 200:
            raise RuntimeError(f"close: {status} {closed}")


class BaselineCalls:
    """A dispatch on a baseline server: the POST, until the event is on a random unit's socket."""

    def __init__(self, http: aiohttp.ClientSession, url: str, phones: dict[str, Phone]) -> None:
        self.http, self.url, self.phones = http, url, phones
        self.units = list(phones)

    async def __call__(self, window: Window) -> None:
        unit, call = random.choice(self.units), uuid.uuid4().hex
        phone = self.phones[unit]
        arrived = phone.expect(call)
        window.started()
        started = time.perf_counter()
        try:
            async with self.http.post(f"{self.url}/dispatch", json={"unit": unit, "call": call, "address": "Jl. Beban 1"}) as r:
                if r.status != 201:
                    raise RuntimeError(f"baseline dispatch: {r.status}")
            await window.arrival(phone, call, arrived, started)
        except (RuntimeError, aiohttp.ClientError) as exc:
            window.failed_with(exc)
