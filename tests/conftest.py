"""Shared fixtures: one real embedded PostgreSQL for the whole run, a fresh database per test."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import os
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import asyncpg
import pytest
from aiohttp.test_utils import TestServer

from server import db, demo_region, migrate
from server.app import create_app
from server.config import AuthSettings, Config, DatabaseSettings
from server.embedded_db import EmbeddedDatabase
from server.passwords import Passwords

# Cheap argon2 so tests spend their time on behaviour, not on hashing.
TEST_AUTH = AuthSettings(argon2_time_cost=1, argon2_memory_kib=8192)
TEMPLATE_EMPTY = "tmpl_empty"
TEMPLATE_DEMO = "tmpl_demo"
_counter = itertools.count()


def with_dbname(dsn: str, dbname: str) -> str:
    return urlunsplit(urlsplit(dsn)._replace(path=f"/{dbname}"))


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[str]:
    """A real PostgreSQL (embedded) for the whole run; yields the DSN of its postgres database."""
    # Not under pytest's basetemp: pytest prunes old basetemps, which would pull the data
    # directory from under a server still used by another, concurrent test run.
    root = Path(tempfile.mkdtemp(prefix="psc119-test-pg-"))
    embedded = EmbeddedDatabase(root)
    embedded.start()
    try:
        admin = embedded.dsn("postgres")
        asyncio.run(_make_templates(admin))
        yield admin
    finally:
        embedded.stop()
        shutil.rmtree(root, ignore_errors=True)


async def _make_templates(admin: str) -> None:
    con = await asyncpg.connect(admin)
    try:
        for name in (TEMPLATE_EMPTY, TEMPLATE_DEMO):
            await con.execute(f"CREATE DATABASE {name}")
    finally:
        await con.close()
    for name in (TEMPLATE_EMPTY, TEMPLATE_DEMO):
        target = await db.connect(with_dbname(admin, name))
        try:
            await migrate.migrate(target)
            if name == TEMPLATE_DEMO:
                await demo_region.load_demo(target, Passwords(TEST_AUTH))
        finally:
            await target.close()


async def _clone(admin: str, template: str) -> str:
    name = f"t{os.getpid()}_{next(_counter)}"
    con = await asyncpg.connect(admin)
    try:
        await con.execute(f"CREATE DATABASE {name} TEMPLATE {template}")
    finally:
        await con.close()
    return with_dbname(admin, name)


async def _drop(admin: str, dsn: str) -> None:
    con = await asyncpg.connect(admin)
    try:
        await con.execute(f"DROP DATABASE IF EXISTS {urlsplit(dsn).path.lstrip('/')} WITH (FORCE)")
    finally:
        await con.close()


@pytest.fixture
async def empty_dsn(pg_cluster: str) -> AsyncIterator[str]:
    """A fresh, migrated, empty database for this test alone."""
    dsn = await _clone(pg_cluster, TEMPLATE_EMPTY)
    yield dsn
    await _drop(pg_cluster, dsn)


@pytest.fixture
async def demo_dsn(pg_cluster: str) -> AsyncIterator[str]:
    """A fresh database holding the demo region and demo users, for this test alone."""
    dsn = await _clone(pg_cluster, TEMPLATE_DEMO)
    yield dsn
    await _drop(pg_cluster, dsn)


@pytest.fixture
async def bare_dsn(pg_cluster: str) -> AsyncIterator[str]:
    """A fresh database with no tables at all (for migration tests)."""
    dsn = await _clone(pg_cluster, "template0")
    yield dsn
    await _drop(pg_cluster, dsn)


def app_config(dsn: str, **auth: object) -> Config:
    return Config(database=DatabaseSettings(url=dsn, pool_min=1, pool_max=10), auth=dataclasses.replace(TEST_AUTH, **auth))


@dataclasses.dataclass
class Api:
    """A real HTTP client against the real app on an ephemeral port."""

    server: TestServer
    session: aiohttp.ClientSession
    dsn: str

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))

    async def login(self, username: str, password: str = demo_region.DEMO_PASSWORD) -> str:
        async with self.session.post(self.url("/api/auth/login"), json={"username": username, "password": password}) as r:
            assert r.status == 200, await r.text()
            return str((await r.json())["token"])

    async def call(self, method: str, path: str, token: str | None = None, **kwargs: object) -> tuple[int, Any]:
        """Status and body (parsed JSON, or text for anything else)."""
        headers = dict(kwargs.pop("headers", {}))  # type: ignore[call-overload]
        if token:
            headers["Authorization"] = f"Bearer {token}"
        async with self.session.request(method, self.url(path), headers=headers, **kwargs) as r:  # type: ignore[arg-type]
            if r.content_type == "application/json":
                return r.status, await r.json()
            return r.status, await r.text()


async def start_api(dsn: str, config: Config | None = None) -> Api:
    app = create_app(config or app_config(dsn), dsn)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    return Api(server, aiohttp.ClientSession(), dsn)


@pytest.fixture
async def api(demo_dsn: str) -> AsyncIterator[Api]:
    client = await start_api(demo_dsn)
    yield client
    await client.session.close()
    await client.server.close()


@pytest.fixture
async def con(demo_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await db.connect(demo_dsn)
    yield connection
    await connection.close()


PSC119 = [sys.executable, "-m", "server.cli"]
REPO = Path(__file__).resolve().parent.parent


# In CI a skipped test is a failure: everything must run there.
_skipped: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped:
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("CI") and _skipped:
        print(f"\nCI: {len(_skipped)} test(s) skipped, which CI counts as failure: {_skipped}", file=sys.stderr)
        session.exitstatus = 1
