"""The shipped alert rules: valid for Prometheus, behaving as their unit tests say, on series the server exports."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import subprocess

import asyncpg
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import REPO, Api

RULES = REPO / "deploy" / "prometheus"
# Series that come from Prometheus itself, not from the server.
FROM_PROMETHEUS = {"up"}
SUFFIXES = ("_bucket", "_count", "_sum", "_total")


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    # Debian's "prometheus" package ships promtool; `make test` installs it.
    return subprocess.run(["promtool", *args], cwd=RULES, capture_output=True, text=True, timeout=60)


def test_promtool_accepts_the_rules() -> None:
    checked = promtool("check", "rules", "alerts.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 6 rules found" in checked.stdout


def test_the_rules_fire_as_their_unit_tests_expect() -> None:
    tested = promtool("test", "rules", "alerts_test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr


LAST_BACKUP = dt.datetime(2026, 11, 30, 2, 0, tzinfo=dt.UTC)
LAST_SWEEP = dt.datetime(2026, 11, 29, 19, 5, tzinfo=dt.UTC)


async def _families(api: Api) -> dict[str, dict[frozenset[tuple[str, str]], float]]:
    status, text = await api.call("GET", "/metrics")
    assert status == 200
    return {f.name: {frozenset(s.labels.items()): s.value for s in f.samples} for f in text_string_to_metric_families(text)}


async def test_every_series_the_rules_use_is_exported(api: Api) -> None:
    families = await _families(api)
    rules = yaml.safe_load((RULES / "alerts.yml").read_text())["groups"][0]["rules"]
    assert {r["alert"] for r in rules} == {
        "Psc119Down", "Psc119DatabaseUnreachable", "Psc119EventLagHigh", "Psc119AckSweepNotRunning", "Psc119BackupTooOld", "Psc119LoginAttack",
    }
    for rule in rules:
        assert set(rule) == {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert rule["labels"]["severity"] in ("critical", "warning")
        for name in set(re.findall(r"\b(psc119_\w+|up)\b", rule["expr"])) - FROM_PROMETHEUS:
            family = next((name.removesuffix(s) for s in SUFFIXES if name.endswith(s)), name)
            assert family in families, (rule["alert"], name)
        for sweep in re.findall(r'sweep="(\w+)"', rule["expr"]):
            for _ in range(100):  # the loop's first round may still be running
                if frozenset({("sweep", sweep)}) in families["psc119_sweep_last_success_timestamp_seconds"]:
                    break
                await asyncio.sleep(0.05)
                families = await _families(api)
            assert frozenset({("sweep", sweep)}) in families["psc119_sweep_last_success_timestamp_seconds"], sweep


async def test_the_last_backup_and_retention_sweep_are_read_from_their_records(api: Api, con: asyncpg.Connection) -> None:
    families = await _families(api)
    # Never run: 0, which is older than any limit, so the backup alert fires on a new install.
    assert families["psc119_backup_last_success_timestamp_seconds"] == {frozenset(): 0.0}
    assert families["psc119_retention_last_run_timestamp_seconds"] == {frozenset(): 0.0}
    await con.execute(
        "INSERT INTO backup_runs (started_at, finished_at, ok, scheduled) VALUES ($1, $1, true, true), ($2, $2, false, true)",
        LAST_BACKUP, LAST_BACKUP + dt.timedelta(hours=24),
    )
    await con.execute(
        "INSERT INTO retention_runs (started_at, finished_at, as_of, counts) VALUES ($1, $1, $1, $2)",
        LAST_SWEEP, {"tracks": 120, "chat": 3},
    )
    families = await _families(api)
    assert families["psc119_backup_last_success_timestamp_seconds"] == {frozenset(): LAST_BACKUP.timestamp()}  # the failed one does not count
    assert families["psc119_retention_last_run_timestamp_seconds"] == {frozenset(): LAST_SWEEP.timestamp()}
    assert families["psc119_retention_last_run_rows"] == {
        frozenset({("class", "tracks")}): 120.0, frozenset({("class", "chat")}): 3.0,
    }
