"""Benchmark: the strict JSON decoder every body and socket frame passes, against plain ``json.loads``.

Documents: a call intake body, a consult request, a 64 KB SDP offer frame, a 1 MB
list of incidents (the largest body accepted), and two refusals: a megabyte of
``[`` and a megabyte of arrays nested 31 deep (the most work the depth check can
be made to do). Prints microseconds per document for both decoders and the ratio;
asserts only that both decode accepted documents to the same value.

    python bench/bench_strict_json.py [--repeat 200]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

from results import Row, emit

from server import strict_input
from server.errors import ApiError

CALL = {"idempotency_key": "0f8e2c1a-call-0001", "phone": "0812-3456-7890", "caller_name": "Ibu Sari",
        "location": {"lat": -6.2695, "lon": 106.707}, "address": "Jl. Ceger Raya 12", "call_type": "chest_pain",
        "complaint": "nyeri dada sejak 30 menit", "notes": "pasien 58 tahun, riwayat hipertensi"}
CONSULT = {"idempotency_key": "consult-0001", "service": "tele_ekg", "specialty": "jantung", "urgency": "emergency",
           "patient": {"age": 58, "sex": "male", "chief_complaint": "nyeri dada kiri sejak 2 jam",
                       "vitals": {"systolic_bp": 150, "diastolic_bp": 95, "heart_rate": 108, "spo2": 94}}}
SDP = {"type": "offer", "sdp": "v=0\r\n" + "a=candidate:842163049 1 udp 2122260223 127.0.0.1 54321 typ host\r\n" * 900}
INCIDENTS = [{**CALL, "idempotency_key": f"key-{n:08d}", "id": n} for n in range(3300)]


def per_call_us(fn: Callable[[], Any], repeat: int) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat * 1e6


def refused(text: str) -> Callable[[], None]:
    def run() -> None:
        try:
            strict_input.loads(text)
        except ApiError:
            return
        raise AssertionError("accepted")

    return run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    print(f"{'document':<28}{'bytes':>10}{'json.loads µs':>16}{'strict µs':>12}{'ratio':>8}")
    rows = []
    for name, value in (("call intake", CALL), ("consult request", CONSULT), ("SDP offer frame", SDP), ("1 MB of incidents", INCIDENTS)):
        text = json.dumps(value)
        assert strict_input.loads(text) == json.loads(text)
        repeat = max(3, args.repeat // (1 + len(text) // 10_000))
        base = per_call_us(lambda text=text: json.loads(text), repeat)
        strict = per_call_us(lambda text=text: strict_input.loads(text), repeat)
        print(f"{name:<28}{len(text):>10}{base:>16.1f}{strict:>12.1f}{strict / base:>8.2f}")
        rows.append(Row(f"strict JSON decode: {name}", strict, base, "json.loads", "µs"))
    for name, text in (("refused: 1 MB of '['", "[" * 1_000_000),
                       ("refused: 1 MB nested 31 deep", "[" + ",".join(["[" * 30 + "]" * 30] * 16_000) + "," + "[" * 33 + "]" * 33 + "]")):
        print(f"{name:<28}{len(text):>10}{'-':>16}{per_call_us(refused(text), 5):>12.1f}{'':>8}")
    emit(*rows)


if __name__ == "__main__":
    main()
