"""Benchmark: UnitIndex.recommend against the brute-force geopy scan.

Builds a seeded fleet of 10,000 units around Kota Tangerang Selatan, runs
k=5 queries through the index and through ``brute_force_recommend`` (one
geopy geodesic per eligible unit) in the same process, and prints the
index's p50 and p99 per query against the scan's median, and their ratio; also the p99 of
the CPU time a query takes, which the waits of a busy shared machine do not inflate.
It asserts only that both return the same recommendations, never a time.

The scan costs about a second per query on a slow machine, so it runs on
the first 40 queries by default; ``--brute-queries 500`` for the full
comparison. The index is warmed by a few queries first, as a running
server's is.

    python bench/bench_recommend.py [--units 10000] [--queries 2000] [--brute-queries 40]
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import datetime, timedelta, timezone

from results import Row, emit

from bench_support import percentile
from dispatch.eta import GeodesicEta
from dispatch.geo import Point
from dispatch.ids import UnitId
from dispatch.index import UnitIndex
from dispatch.recommend import Recommendation, brute_force_recommend
from dispatch.status import UnitStatus
from dispatch.units import DEFAULT_CAPABILITIES, Unit, UnitKind

NOW = datetime(2024, 5, 1, 8, 0, tzinfo=timezone(timedelta(hours=7)))
BOX = ((-6.40, -6.20), (106.60, 106.80))  # roughly Kota Tangerang Selatan


def random_point(rng: random.Random) -> Point:
    return Point(rng.uniform(*BOX[0]), rng.uniform(*BOX[1]))


def build_fleet(rng: random.Random, count: int) -> list[Unit]:
    statuses = [UnitStatus.AVAILABLE] * 7 + [UnitStatus.EN_ROUTE, UnitStatus.ON_SCENE, UnitStatus.OFF_DUTY]
    fleet = []
    for i in range(count):
        kind = UnitKind.MOTORBIKE if rng.random() < 0.6 else UnitKind.AMBULANCE
        caps = set(DEFAULT_CAPABILITIES[kind])
        if kind is UnitKind.AMBULANCE and rng.random() < 0.3:
            caps.add("als")
        fix = random_point(rng) if rng.random() < 0.85 else None
        # Fixes up to 45 min old: about a third are stale at the default 30 min.
        fix_time = NOW - timedelta(minutes=rng.uniform(0, 45)) if fix is not None else None
        fleet.append(
            Unit(
                UnitId(f"unit-{i:05d}"),
                f"{kind.value[:3].upper()}-{i:05d}",
                kind,
                frozenset(caps),
                random_point(rng),
                rng.choice(statuses),
                fix,
                fix_time,
            )
        )
    return fleet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--units", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--brute-queries", type=int, default=40)
    parser.add_argument("--warm-up", type=int, default=50)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--seed", type=int, default=119)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    fleet = build_fleet(rng, args.units)
    queries = []
    for _ in range(args.warm_up + args.queries):
        # One query in five asks for an advanced-life-support unit.
        required = frozenset({"als"}) if rng.random() < 0.2 else frozenset()
        queries.append((random_point(rng), required))
    warm_up, queries = queries[: args.warm_up], queries[args.warm_up :]

    eta = GeodesicEta()
    started = time.perf_counter()
    index = UnitIndex(eta)
    for unit in fleet:
        index.upsert(unit)
    build_s = time.perf_counter() - started
    for point, required in warm_up:
        index.recommend(point, args.k, NOW, required_capabilities=required)

    index_results: list[list[Recommendation]] = []
    index_ms: list[float] = []
    index_cpu_ms: list[float] = []  # this thread's CPU time: what the query costs, without the waits of a busy machine
    for point, required in queries:
        started, started_cpu = time.perf_counter(), time.thread_time()
        index_results.append(index.recommend(point, args.k, NOW, required_capabilities=required))
        index_ms.append((time.perf_counter() - started) * 1000)
        index_cpu_ms.append((time.thread_time() - started_cpu) * 1000)

    brute_ms: list[float] = []
    for i, (point, required) in enumerate(queries[: args.brute_queries]):
        started = time.perf_counter()
        expected = brute_force_recommend(fleet, point, args.k, NOW, eta=eta, required_capabilities=required)
        brute_ms.append((time.perf_counter() - started) * 1000)
        assert index_results[i] == expected, f"query {i}: index and brute force disagree"

    p50, p99, cpu_p99 = percentile(index_ms, 50), percentile(index_ms, 99), percentile(index_cpu_ms, 99)
    scan = percentile(brute_ms, 50) if brute_ms else None
    available = sum(1 for u in fleet if u.status is UnitStatus.AVAILABLE)
    print(f"fleet: {len(fleet)} units ({available} available), k={args.k}, seed={args.seed}")
    print(f"index build: {build_s * 1000:.1f} ms")
    print(f"index:       p50 {p50:.3f} ms, p99 {p99:.3f} ms, mean {sum(index_ms) / len(index_ms):.3f} ms per query "
          f"over {len(queries)} queries; CPU time p99 {cpu_p99:.3f} ms")
    if scan is not None:
        print(f"geopy scan:  median {scan:.1f} ms per query over {len(brute_ms)} queries (results identical)")
        print(f"speed-up:    {scan / p50:.0f}x at p50, {scan / p99:.0f}x at p99")
    name = f"recommend top-{args.k} of {len(fleet)} units"
    baseline = "geopy brute-force scan (median)"
    why = "" if scan is not None else "no brute-force queries"
    emit(Row(f"{name}, p50", p50, scan, baseline, "ms/query", why))
    emit(Row(f"{name}, p99", p99, scan, baseline, "ms/query", why))
    emit(Row(f"{name}, p99 of CPU time", cpu_p99, scan, baseline, "ms/query", why))


if __name__ == "__main__":
    main()
