"""Run every benchmark, each in its own process, and print one table: psc119's figure, the baseline's measured in
the same run, their ratio and the unit. The same rows go to ``bench/results/latest.json`` (with the machine they
ran on), each benchmark's own output to ``bench/results/<name>.log``.

Benchmarks run in a network namespace holding only loopback (as the tests do) where one can be made. PeerJS's
server is installed from npm first, outside it (only the npm registry is reached); without Node.js, or when the
install fails, its rows say why. Sizes are quick by default (the whole run takes minutes on two cores);
``--full`` runs each benchmark at its own defaults.

    python bench/run.py [--only dispatch,relay] [--full] [--out bench/results/latest.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import peerjs
from results import Row, document, parse, table

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "results"


@dataclasses.dataclass(frozen=True, slots=True)
class Benchmark:
    name: str
    quick: tuple[str, ...]  # the arguments of a quick run; a full run passes none

    @property
    def script(self) -> Path:
        return BENCH / f"bench_{self.name}.py"


BENCHMARKS = (
    Benchmark("dispatch", ("--sockets", "500", "--rate", "50", "--seconds", "15", "--ladder", "25,50,100,200", "--step", "4",
                           "--sequential", "100", "--no-baseline-ladder", "--history")),
    Benchmark("relay", ("--rooms", "100", "--messages", "50")),
    Benchmark("memory", ("--sockets", "200", "--deflated", "console")),
    Benchmark("reconnect", ("--phones", "500", "--rounds", "3")),
    Benchmark("gps", ("--units", "300", "--seconds", "5")),
    Benchmark("consult_media", ("--runs", "15")),  # its target is 10 %: a median of 5 moves by more than that
    Benchmark("consult_join", ("--rounds", "3")),
    Benchmark("weak_link", ("--settle", "10", "--window", "10")),
    Benchmark("recommend", ("--queries", "1000", "--brute-queries", "10")),
    Benchmark("ws_flood", ("--pings", "200")),
    Benchmark("login", ("--me", "150")),
    Benchmark("metrics", ("--requests", "1000")),
    Benchmark("strict_json", ("--repeat", "50")),
    Benchmark("event_append", ("--writers", "20,100", "--transactions", "40")),
    Benchmark("revocation", ("--sessions", "5", "--sockets", "5", "--appends", "500")),
    Benchmark("unit_replay", ("--days", "5", "--per-day", "2000", "--runs", "5")),
    Benchmark("retention", ("--calls", "2000", "--tracks", "20000", "--audit", "10000")),
    Benchmark("backup", ("--calls", "100", "--files", "20", "--size", "100000")),
)


def loopback_only(command: list[str]) -> list[str]:
    """``command`` in a new network namespace with only loopback up, when this machine lets us make one."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return command
    flags = "-n" if os.geteuid() == 0 else "-rn"
    return ["unshare", flags, "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *command]


@dataclasses.dataclass(frozen=True, slots=True)
class Outcome:
    rows: list[Row]
    seconds: float
    code: int | None  # None: killed at the timeout


def run_one(benchmark: Benchmark, args: list[str], timeout: float, log: Path, isolate: bool = True) -> Outcome:
    command = [sys.executable, str(benchmark.script), *args]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    started = time.perf_counter()
    try:
        done = subprocess.run(loopback_only(command) if isolate else command, cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=timeout)
        out, err, code = done.stdout, done.stderr, done.returncode
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else exc.stderr or ""
        code = None
    seconds = time.perf_counter() - started
    log.write_text(f"$ {' '.join(command)}\n{out}\n--- stderr ---\n{err}")
    rows = parse(out)
    if code != 0 or not rows:
        why = f"timed out after {timeout:.0f} s" if code is None else f"exit code {code}" if code else "no rows"
        last = next((line for line in reversed(err.strip().splitlines()) if line.strip()), "")
        rows = rows or [Row(benchmark.name, None, None, "-", "", f"failed: {why}; {last[:100]}".rstrip("; "))]
    return Outcome(rows, seconds, code)


def machine() -> dict[str, Any]:
    def first(path: str, key: str) -> str:
        try:
            for line in Path(path).read_text().splitlines():
                if line.startswith(key):
                    return line.split(":", 1)[1].strip()
        except OSError:
            pass
        return "unknown"

    node = shutil.which("node")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    return {
        "cpu": first("/proc/cpuinfo", "model name"), "cores": os.cpu_count(), "memory": first("/proc/meminfo", "MemTotal"),
        "system": platform.platform(), "python": platform.python_version(),
        "node": subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip() if node else None,
        "commit": commit or None, "load_average_at_start": os.getloadavg(),
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def prepare_peerjs(target: Path) -> list[str]:
    """The relay benchmark's PeerJS arguments: where it is installed, or why it is missing."""
    try:
        return ["--peerjs-dir", str(peerjs.install(target).parents[2])]
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        return ["--no-peerjs", str(exc)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="comma-separated names: " + ", ".join(b.name for b in BENCHMARKS))
    parser.add_argument("--full", action="store_true", help="each benchmark at its own default sizes")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds one benchmark may take")
    parser.add_argument("--out", type=Path, default=RESULTS / "latest.json")
    args = parser.parse_args()
    chosen = BENCHMARKS if not args.only else [b for b in BENCHMARKS if b.name in args.only.split(",")]
    RESULTS.mkdir(parents=True, exist_ok=True)
    about = machine()
    rows: list[Row] = []
    runs: list[dict[str, Any]] = []
    for benchmark in chosen:
        extra = prepare_peerjs(RESULTS / "peerjs") if benchmark.name == "relay" else []
        print(f"{benchmark.name}: running", flush=True)
        outcome = run_one(benchmark, [*([] if args.full else benchmark.quick), *extra], args.timeout,
                          RESULTS / f"{benchmark.name}.log")
        print(f"{benchmark.name}: {outcome.seconds:.0f} s, {len(outcome.rows)} rows", flush=True)
        rows += outcome.rows
        runs.append({"benchmark": benchmark.name, "seconds": round(outcome.seconds, 1), "exit_code": outcome.code,
                     "arguments": [*([] if args.full else benchmark.quick)]})
    about["load_average_at_end"] = os.getloadavg()
    print()
    print(table(rows))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document(rows, about, runs), indent=2, ensure_ascii=False) + "\n")
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
