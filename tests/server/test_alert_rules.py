"""The shipped alert rules: valid for Prometheus, behaving as their unit tests say, on series the server exports."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families

from server.app import create_app
from server.keys import BACKUP_LAST_SUCCESS
from tests.conftest import REPO, Api, app_config

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


LAST_BACKUP = dt.datetime(2026, 11, 30, 2, 0, tzinfo=dt.timezone.utc)


async def with_backups(dsn: str, last: dt.datetime | None) -> Api:
    """The app with a backup record wired in, as the backup runs are: ``last`` is the last good one (None: never)."""
    app = create_app(app_config(dsn), dsn)

    async def last_backup(_app: web.Application) -> dt.datetime | None:
        return last

    app[BACKUP_LAST_SUCCESS] = last_backup
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    return Api(server, aiohttp.ClientSession(), dsn)


@pytest.fixture
async def backed_up(demo_dsn: str) -> AsyncIterator[Api]:
    api = await with_backups(demo_dsn, LAST_BACKUP)
    yield api
    await api.session.close()
    await api.server.close()


async def _families(api: Api) -> dict[str, dict[frozenset[tuple[str, str]], float]]:
    status, text = await api.call("GET", "/metrics")
    assert status == 200
    return {f.name: {frozenset(s.labels.items()): s.value for s in f.samples} for f in text_string_to_metric_families(text)}


async def test_every_series_the_rules_use_is_exported(backed_up: Api) -> None:
    families = await _families(backed_up)
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
                families = await _families(backed_up)
            assert frozenset({("sweep", sweep)}) in families["psc119_sweep_last_success_timestamp_seconds"], sweep


async def test_the_backup_time_is_exported_only_once_wired(api: Api, backed_up: Api) -> None:
    assert "psc119_backup_last_success_timestamp_seconds" not in await _families(api)
    wired = await _families(backed_up)
    assert wired["psc119_backup_last_success_timestamp_seconds"] == {frozenset(): LAST_BACKUP.timestamp()}


async def test_no_backup_ever_is_exported_as_zero(demo_dsn: str) -> None:
    api = await with_backups(demo_dsn, None)
    try:
        assert (await _families(api))["psc119_backup_last_success_timestamp_seconds"] == {frozenset(): 0.0}
    finally:
        await api.session.close()
        await api.server.close()
