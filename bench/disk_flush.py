"""How long the database's disk takes to flush a write, measured beside a benchmark's window.

Every commit psc119 answers waits for PostgreSQL's WAL flush, so no dispatch reaches a unit faster than the disk
flushes; where flushes stall (a shared virtual disk does, for hundreds of milliseconds at a time), every commit in
flight stalls with them, whatever the server. `FlushProbe` writes 8 KiB and ``fdatasync``s it every `EVERY_S`
in a file beside the database (same filesystem) from a thread, for as long as it runs, so a window's latency can
be read against the disk's own in the same seconds.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from bench_support import percentile

EVERY_S = 0.02
BLOCK = b"\0" * 8192


class FlushProbe:
    """``with FlushProbe(directory) as probe:`` flushes a block every `EVERY_S` until the block ends; then
    ``probe.latencies`` holds each flush's time in ms."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "flush-probe"
        self.latencies: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="flush-probe", daemon=True)

    def __enter__(self) -> FlushProbe:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while not self._stop.wait(EVERY_S):
                started = time.perf_counter()
                os.pwrite(fd, BLOCK, 0)
                os.fdatasync(fd)
                self.latencies.append((time.perf_counter() - started) * 1000)
        finally:
            os.close(fd)
            self.path.unlink(missing_ok=True)

    def p(self, q: float) -> float:
        return percentile(self.latencies, q) if self.latencies else float("nan")

    def over(self, ms: float) -> int:
        return sum(1 for latency in self.latencies if latency > ms)

    def summary(self) -> str:
        if not self.latencies:
            return "no flush measured"
        return (f"disk flush p50 {self.p(50):.2f} ms, p99 {self.p(99):.1f} ms, max {max(self.latencies):.0f} ms, "
                f"{self.over(10)} of {len(self.latencies)} over 10 ms")
