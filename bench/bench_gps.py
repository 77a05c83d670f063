"""Benchmark: GPS ingest, many unit sockets sending fixes at rising aggregate rates, read by an operator's console.

A real ``psc119 serve`` (its own process, on an embedded PostgreSQL holding the demo region plus ``--units``
units, each with a field crew's session) takes fixes from ``--units`` unit sockets that `bench/gps_sender.py`
(another process) drives at each rate of ``--rates`` for ``--seconds``; an operator socket (``/ws/operator``, as
the console, with permessage-deflate) reads the ``positions`` batches. Then the same against the bare aiohttp
server of `bench/baseline_servers.py`. For each rate:

- accepted fixes/s: each socket's n-th fix is n millionths of a degree east of its start, so the newest position
  the operator holds of a unit tells how many of its fixes the server took in; counted until the operator holds
  every unit's last fix (or the pause between steps ends), over that time;
- position age: ten times a second, for every unit, how old the newest position the operator holds is (the
  fix's own time against now), p50 and p99 over the step;
- pushback: the share of fixes the senders could not write because the server read no faster (TCP), and the
  sockets the server closed; psc119's own count of fixes superseded before its flush (``/metrics``), if it has one.

Asserts no figures.

    python bench/bench_gps.py [--units 1000] [--rates 5000,10000,20000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import json
import re
import sys
import time
from pathlib import Path

import aiohttp
import websockets
from gps_sender import start_of
from results import Row, emit

from bench_support import Running, baseline_server, demo_database, login, percentile, serve
from server import db, sessions

SENDER = Path(__file__).resolve().parent / "gps_sender.py"
SAMPLE_S = 0.1
WARMUP_S = 1.0  # the first second of a step is left out of the ages: the flush's own period, and the first batch
# A unit socket may send far more often than a phone does: the load, not the per-socket limit, is what is measured.
LIFTED = {"PSC119_LIMITS_WS_POSITION_PER_S": "1000000", "PSC119_LIMITS_WS_POSITION_BURST": "1000000"}
SUPERSEDED = re.compile(r"^psc119_gps_fixes_superseded_total (\S+)$", re.M)


@dataclasses.dataclass
class Step:
    rate: float
    accepted_per_s: float
    age_p50_ms: float
    age_p99_ms: float
    held_back: float  # share of the fixes the senders could not write
    closed: int
    superseded: float | None


async def add_units(dsn: str, count: int) -> list[str]:
    """``count`` available units, each with a field crew and a live session: the sockets' paths."""
    con = await db.connect(dsn)
    try:
        template = await con.fetchrow("SELECT kind, capabilities, base_lat, base_lon FROM units ORDER BY id LIMIT 1")
        password_hash = await con.fetchval("SELECT password_hash FROM users ORDER BY id LIMIT 1")
        paths = []
        async with con.transaction():
            for i in range(count):
                unit = f"gps-{i:05d}"
                await con.execute(
                    "INSERT INTO units (id, callsign, kind, capabilities, base_lat, base_lon, status) VALUES ($1, $1, $2, $3, $4, $5, 'available')",
                    unit, template["kind"], template["capabilities"], template["base_lat"], template["base_lon"],
                )
                user = await con.fetchval(
                    "INSERT INTO users (username, role, unit_id, password_hash) VALUES ($1, 'field_team', $2, $3) RETURNING id",
                    f"crew-{unit}", unit, password_hash,
                )
                token, _ = await sessions.create(con, user, dt.timedelta(hours=2), "127.0.0.1")
                paths.append(f"/ws/unit?token={token}")
        return paths
    finally:
        await con.close()


class Console:
    """The operator's view: the newest position of each unit, and how many fixes it stands for."""

    def __init__(self, units: dict[str, int]) -> None:
        self.index = units  # unit id -> its sender's socket index
        self.at: dict[str, float] = {}
        self.seq: dict[str, int] = {}

    def apply(self, message: dict[str, object]) -> None:
        if message.get("type") != "positions":
            return
        for entry in message["units"]:  # type: ignore[attr-defined]
            i = self.index.get(entry["id"])
            if i is None:
                continue
            at = dt.datetime.fromisoformat(entry["at"]).timestamp()
            if at >= self.at.get(entry["id"], 0.0):
                self.at[entry["id"]] = at
                self.seq[entry["id"]] = round((entry["lon"] - start_of(i)[1]) * 1e6)

    def ages(self, now: float, since: float) -> list[float]:
        return [now - max(self.at.get(u, since), since) for u in self.index]

    def taken(self) -> int:
        return sum(self.seq.values())


async def run(url: str, operator_url: str, paths: list[str], units: list[str], rates: list[float], seconds: float,
              metrics_url: str | None) -> list[Step]:
    console = Console({u: i for i, u in enumerate(units)})
    steps: list[Step] = []
    async with websockets.connect(operator_url, max_size=None, max_queue=None) as operator:

        async def read() -> None:
            async for raw in operator:
                console.apply(json.loads(raw))

        reader = asyncio.create_task(read())
        sender = await asyncio.create_subprocess_exec(
            sys.executable, str(SENDER), url, "--rates", ",".join(f"{r:g}" for r in rates), "--seconds", str(seconds),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )
        assert sender.stdin is not None and sender.stdout is not None
        sender.stdin.write("".join(p + "\n" for p in paths).encode())
        await sender.stdin.drain()
        sender.stdin.close()
        try:
            for _ in range(len(rates) + 1):
                line = (await asyncio.wait_for(sender.stdout.readline(), 600)).decode()
                if line.startswith("start "):
                    steps.append(await step(float(line.split()[1]), console, sender.stdout, seconds, units, metrics_url))
        finally:
            await sender.wait()
            reader.cancel()
    return steps


async def superseded(metrics_url: str | None) -> float | None:
    if metrics_url is None:
        return None
    async with aiohttp.ClientSession() as http, http.get(metrics_url) as r:
        match = SUPERSEDED.search(await r.text())
        return float(match.group(1)) if match else None


async def step(rate: float, console: Console, out: asyncio.StreamReader, seconds: float, units: list[str],
               metrics_url: str | None) -> Step:
    started, wall_started = time.perf_counter(), time.time()
    taken_before, superseded_before = console.taken(), await superseded(metrics_url)
    ages: list[float] = []
    ending = asyncio.ensure_future(out.readline())
    while not ending.done():
        await asyncio.sleep(SAMPLE_S)
        if time.perf_counter() - started >= WARMUP_S:
            ages += console.ages(time.time(), wall_started)
    parts = (await ending).decode().split(maxsplit=2)
    sent = json.loads(parts[2])
    # Until the operator holds every unit's last fix: what the server took in, and how long it took.
    target = taken_before + sent["sent"]
    while console.taken() < target and time.perf_counter() - started < seconds + 3.5:
        await asyncio.sleep(0.05)
    elapsed = time.perf_counter() - started
    after = await superseded(metrics_url)
    written = sent["sent"] + sent["held_back"]
    return Step(
        rate, (console.taken() - taken_before) / elapsed, percentile(ages, 50) * 1000, percentile(ages, 99) * 1000,
        sent["held_back"] / written if written else 0.0, sent["closed"],
        None if after is None or superseded_before is None else after - superseded_before,
    )


async def psc119(root: Path, dsn: str, paths: list[str], units: list[str], rates: list[float], seconds: float) -> list[Step]:
    async with serve(root, dsn, LIFTED) as server:
        return await on_psc119(server, paths, units, rates, seconds)


async def on_psc119(server: Running, paths: list[str], units: list[str], rates: list[float], seconds: float) -> list[Step]:
    token = await login(server.url, "operator", "demo119")
    ws_url = server.url.replace("http://", "ws://")
    return await run(server.url, f"{ws_url}/ws/operator?token={token}", paths, units, rates, seconds, f"{server.url}/metrics")


async def bare(units: list[str], rates: list[float], seconds: float) -> list[Step]:
    async with baseline_server("forward") as (url, _pid):
        ws_url = url.replace("http://", "ws://")
        return await run(url, f"{ws_url}/ws/operator", [f"/ws/unit?unit={u}" for u in units], units, rates, seconds, None)


def show(name: str, s: Step) -> None:
    extra = "" if s.superseded is None else f", {s.superseded:,.0f} superseded"
    print(f"{name:<12} {s.rate:>7,.0f}/s asked: {s.accepted_per_s:>8,.0f}/s accepted, age p50 {s.age_p50_ms:6.0f} ms "
          f"p99 {s.age_p99_ms:6.0f} ms, {s.held_back:6.1%} held back by TCP, {s.closed} closed{extra}")


async def main(count: int, rates: list[float], seconds: float) -> None:
    async with demo_database("psc119-bench-gps-") as (root, dsn):
        paths = await add_units(dsn, count)
        units = [f"gps-{i:05d}" for i in range(count)]
        ours = await psc119(root, dsn, paths, units, rates, seconds)
    base = await bare(units, rates, seconds)
    rows = []
    for mine, theirs in zip(ours, base, strict=True):
        show("psc119", mine)
        show("bare aiohttp", theirs)
        at = f"{mine.rate:,.0f} fixes/s asked, {count} unit sockets"
        note = f"{mine.held_back:.0%} held back by TCP, {mine.closed} sockets closed" + (
            "" if mine.superseded is None else f", {mine.superseded:,.0f} superseded before the flush")
        rows += [
            Row(f"gps accepted ({at})", mine.accepted_per_s, theirs.accepted_per_s, "bare aiohttp", "fixes/s", note),
            Row(f"gps position age seen by an operator p50 ({at})", mine.age_p50_ms, theirs.age_p50_ms, "bare aiohttp", "ms"),
            Row(f"gps position age seen by an operator p99 ({at})", mine.age_p99_ms, theirs.age_p99_ms, "bare aiohttp", "ms"),
        ]
    emit(*rows)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--units", type=int, default=1000)
    parser.add_argument("--rates", default="5000,10000,20000")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    asyncio.run(main(args.units, [float(r) for r in args.rates.split(",")], args.seconds))
