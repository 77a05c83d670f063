"""The benchmark runner's plumbing on a tiny fake result set: rows printed by a benchmark come back whole, the
table and the JSON hold them, and a benchmark that fails or prints no rows becomes a row saying so. No timings."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import results  # noqa: E402
import run  # noqa: E402
from results import Row  # noqa: E402

ROWS = [
    Row("dispatch p99 (2 units)", 30.0, 3.0, "bare aiohttp", "ms"),
    Row("relay throughput", 1500.0, 6000.0, "PeerJS server", "msg/s"),
    Row("relay p50", 12.5, None, "PeerJS server", "ms", "PeerJS missing: Node.js/npm not installed"),
]


def test_rows_printed_by_a_benchmark_are_parsed_back_whole(capsys: pytest.CaptureFixture[str]) -> None:
    print("its own readable line")
    results.emit(*ROWS)
    out = capsys.readouterr().out
    assert out.startswith("its own readable line\n")
    assert results.parse(out) == ROWS


def test_the_table_shows_each_figure_its_baseline_the_ratio_and_why_one_is_missing() -> None:
    lines = results.table(ROWS).splitlines()
    assert lines[0] == "| benchmark | psc119 | baseline | baseline figure | ratio | unit |"
    assert lines[2] == "| dispatch p99 (2 units) | 30.00 | bare aiohttp | 3.00 | 10x | ms |"
    assert lines[3] == "| relay throughput | 1,500 | PeerJS server | 6,000 | 0.25x | msg/s |"
    assert lines[4] == "| relay p50 (PeerJS missing: Node.js/npm not installed) | 12.50 | PeerJS server | - | - | ms |"


def test_the_json_holds_the_rows_their_ratios_and_the_machine() -> None:
    doc = json.loads(json.dumps(results.document(ROWS, {"cores": 2}, [{"benchmark": "dispatch"}])))
    assert doc["machine"] == {"cores": 2} and doc["runs"] == [{"benchmark": "dispatch"}]
    assert [r["ratio"] for r in doc["rows"]] == [10.0, 0.25, None]
    assert [Row.from_dict(r) for r in doc["rows"]] == ROWS


def fake(tmp_path: Path, name: str, body: str) -> run.Benchmark:
    (tmp_path / f"bench_{name}.py").write_text(textwrap.dedent(body))
    return run.Benchmark(name, ())


def test_the_runner_collects_a_benchmarks_rows_and_turns_a_failure_into_a_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run, "BENCH", tmp_path)
    good = fake(tmp_path, "good", f"""
        import sys
        sys.path.insert(0, {str(Path(results.__file__).parent)!r})
        from results import Row, emit
        print("measuring")
        emit(Row("fake", 2.0, 1.0, "nothing", "ms"))
    """)
    outcome = run.run_one(good, [], 60, tmp_path / "good.log", isolate=False)
    assert (outcome.code, outcome.rows) == (0, [Row("fake", 2.0, 1.0, "nothing", "ms")])
    assert "measuring" in (tmp_path / "good.log").read_text()

    bad = fake(tmp_path, "bad", "raise SystemExit('no database')\n")
    outcome = run.run_one(bad, [], 60, tmp_path / "bad.log", isolate=False)
    assert outcome.code == 1
    assert outcome.rows == [Row("bad", None, None, "-", "", "failed: exit code 1; no database")]
