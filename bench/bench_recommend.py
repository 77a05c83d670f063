"""Benchmark: UnitIndex.recommend against the brute-force scan.

Builds a seeded fleet of 5,000 units around Kota Tangerang Selatan, runs
k=5 queries through the index and through ``brute_force_recommend`` in
the same process, and prints milliseconds per query and the speed-up. It
asserts only that both return the same recommendations, never a time.

The scan computes 5,000 geopy geodesics per query (~1 s each on a slow
machine), so by default it runs on the first 40 of the 500 queries; pass
``--brute-queries 500`` for the full comparison.

    python bench/bench_recommend.py [--units 5000] [--queries 500] [--brute-queries 40]
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import datetime, timedelta, timezone

from results import Row, emit

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
    parser.add_argument("--units", type=int, default=5000)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--brute-queries", type=int, default=40)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--seed", type=int, default=119)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    fleet = build_fleet(rng, args.units)
    queries = []
    for _ in range(args.queries):
        # One query in five asks for an advanced-life-support unit.
        required = frozenset({"als"}) if rng.random() < 0.2 else frozenset()
        queries.append((random_point(rng), required))

    eta = GeodesicEta()
    started = time.perf_counter()
    index = UnitIndex(eta)
    for unit in fleet:
        index.upsert(unit)
    build_s = time.perf_counter() - started

    index_results: list[list[Recommendation]] = []
    started = time.perf_counter()
    for point, required in queries:
        index_results.append(index.recommend(point, args.k, NOW, required_capabilities=required))
    index_s = time.perf_counter() - started

    brute_n = min(args.brute_queries, len(queries))
    started = time.perf_counter()
    for i, (point, required) in enumerate(queries[:brute_n]):
        expected = brute_force_recommend(fleet, point, args.k, NOW, eta=eta, required_capabilities=required)
        assert index_results[i] == expected, f"query {i}: index and brute force disagree"
    brute_s = time.perf_counter() - started

    index_ms = index_s * 1000 / len(queries)
    brute_ms = brute_s * 1000 / brute_n if brute_n else float("nan")
    available = sum(1 for u in fleet if u.status is UnitStatus.AVAILABLE)
    print(f"fleet: {len(fleet)} units ({available} available), k={args.k}, seed={args.seed}")
    print(f"index build: {build_s * 1000:.1f} ms")
    print(f"index:       {index_ms:8.3f} ms/query over {len(queries)} queries")
    print(f"brute force: {brute_ms:8.3f} ms/query over {brute_n} queries (results identical)")
    print(f"speed-up:    {brute_ms / index_ms:8.1f}x")
    emit(Row(f"recommend top-{args.k} of {len(fleet)} units", index_ms, brute_ms, "geopy brute-force scan", "ms/query"))


if __name__ == "__main__":
    main()
