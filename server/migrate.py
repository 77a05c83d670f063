"""Numbered SQL migrations, each applied once, in order, in its own transaction.

Files are ``server/migrations/NNNN_name.sql``. The runner holds a session
advisory lock while it works, so two processes starting together apply each
migration exactly once. A file whose text changed after it was applied is an
error: migrations are append-only history.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
from importlib import resources

import asyncpg

log = logging.getLogger(__name__)

# An arbitrary constant: the advisory lock key reserved for migrations.
MIGRATION_LOCK = 119_000_001
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


class MigrationError(Exception):
    pass


@dataclasses.dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def available() -> list[Migration]:
    found = []
    for entry in resources.files("server.migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise MigrationError(f"migration numbers must run 1..N without gaps, found {versions}")
    return found


async def applied(con: asyncpg.Connection) -> dict[int, str]:
    exists = await con.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    if not exists:
        return {}
    rows = await con.fetch("SELECT version, checksum FROM schema_migrations")
    return {r["version"]: r["checksum"] for r in rows}


async def pending(con: asyncpg.Connection) -> list[Migration]:
    done = await applied(con)
    result = []
    for migration in available():
        if migration.version in done:
            if done[migration.version] != migration.checksum:
                raise MigrationError(f"{migration.name} was changed after it was applied")
        else:
            result.append(migration)
    return result


async def migrate(con: asyncpg.Connection) -> list[str]:
    """Apply every pending migration; return the names applied by this call."""
    await con.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
    try:
        await con.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version    integer PRIMARY KEY,
                   name       text NOT NULL,
                   checksum   text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        names = []
        for migration in await pending(con):
            async with con.transaction():
                await con.execute(migration.sql)
                await con.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    migration.version, migration.name, migration.checksum,
                )
            log.info("applied migration %s", migration.name)
            names.append(migration.name)
        return names
    finally:
        await con.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
