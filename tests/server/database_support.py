"""A PostgreSQL of one test alone, for the tests that stop or restart it under a running server."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from server import db, demo_region, migrate
from server.embedded_db import EmbeddedDatabase
from server.passwords import Passwords
from tests.conftest import TEST_AUTH


@contextlib.asynccontextmanager
async def own_database() -> AsyncIterator[tuple[EmbeddedDatabase, str]]:
    """The embedded server and the DSN of its migrated demo database."""
    # Not under pytest's basetemp, which a concurrent test run may prune under a running server.
    var_dir = Path(tempfile.mkdtemp(prefix="psc119-test-own-pg-"))
    embedded = EmbeddedDatabase(var_dir)
    try:
        await asyncio.to_thread(embedded.start)
        dsn = embedded.dsn("postgres")
        con = await db.connect(dsn)
        await migrate.migrate(con)
        await demo_region.load_demo(con, Passwords(TEST_AUTH))
        await con.close()
        yield embedded, dsn
    finally:
        await asyncio.to_thread(embedded.stop)
        shutil.rmtree(var_dir, ignore_errors=True)
