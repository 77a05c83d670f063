"""What the database benchmarks share: a migrated database on a temporary embedded PostgreSQL."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg

from server import db, migrate
from server.embedded_db import EmbeddedDatabase


@contextlib.asynccontextmanager
async def migrated_database(prefix: str) -> AsyncIterator[tuple[Path, str]]:
    """(a temporary directory, the DSN of database ``bench`` migrated to the current schema); all removed after."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    embedded = EmbeddedDatabase(root)
    embedded.start()
    try:
        admin = await asyncpg.connect(embedded.dsn("postgres"))
        await admin.execute("CREATE DATABASE bench")
        await admin.close()
        dsn = embedded.dsn("bench")
        con = await db.connect(dsn)
        try:
            await migrate.migrate(con)
        finally:
            await con.close()
        yield root, dsn
    finally:
        embedded.stop()
        shutil.rmtree(root, ignore_errors=True)
