"""What every benchmark reports to the runner: rows of psc119's figure against a baseline measured in the same run.

A benchmark prints its own readable lines, then one line per row that starts with `MARK` and holds the row as
JSON; `bench/run.py` runs each benchmark in its own process, collects those lines (`parse`), prints one table
(`table`) and writes the rows as JSON (`document`).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable
from typing import Any

MARK = "bench-row "


@dataclasses.dataclass(frozen=True, slots=True)
class Row:
    """One figure of psc119 beside its baseline's; a figure is None when it could not be measured (``note`` says why)."""

    benchmark: str
    psc119: float | None
    baseline: float | None
    baseline_name: str
    unit: str
    note: str = ""

    @property
    def ratio(self) -> float | None:
        """psc119 over the baseline: above 1 is more of the unit (slower for ms, faster for /s)."""
        if self.psc119 is None or self.baseline is None or self.baseline == 0:
            return None
        return self.psc119 / self.baseline

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "ratio": self.ratio}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Row:
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in fields})


def emit(*rows: Row) -> None:
    """Print ``rows`` for the runner (after the benchmark's own lines)."""
    for row in rows:
        print(MARK + json.dumps(row.to_dict()), flush=True)


def parse(stdout: str) -> list[Row]:
    return [Row.from_dict(json.loads(line[len(MARK):])) for line in stdout.splitlines() if line.startswith(MARK)]


def _figure(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "-"
    if value == 0 or abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"


COLUMNS = ("benchmark", "psc119", "baseline", "baseline figure", "ratio", "unit")


def table(rows: Iterable[Row]) -> str:
    """The rows as one Markdown table (readable in a terminal too); a note follows its row's benchmark name."""
    lines = [
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "|".join(["---", "---:", "---", "---:", "---:", "---"]) + "|",
    ]
    for row in rows:
        name = row.benchmark + (f" ({row.note})" if row.note else "")
        ratio = "-" if row.ratio is None else f"{row.ratio:.3g}x"
        cells = (name, _figure(row.psc119), row.baseline_name, _figure(row.baseline), ratio, row.unit)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def document(rows: Iterable[Row], machine: dict[str, Any], runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The JSON written to bench/results/latest.json."""
    return {"machine": machine, "runs": runs, "rows": [r.to_dict() for r in rows]}
