"""Migrations: each file applied once, in order, recorded with its checksum; safe when many start together."""

from __future__ import annotations

import asyncio
import os

import asyncpg
import pytest

from server import db, migrate
from tests.conftest import PSC119, REPO


async def recorded(dsn: str) -> list[asyncpg.Record]:
    con = await asyncpg.connect(dsn)
    try:
        rows: list[asyncpg.Record] = await con.fetch("SELECT version, name, checksum FROM schema_migrations ORDER BY version")
        return rows
    finally:
        await con.close()


def expected_rows() -> list[tuple[int, str, str]]:
    return [(m.version, m.name, m.checksum) for m in migrate.available()]


def test_available_migrations_are_numbered_from_one() -> None:
    found = migrate.available()
    assert found, "no migration files found"
    assert [m.version for m in found] == list(range(1, len(found) + 1))
    assert all(m.name.startswith(f"{m.version:04d}_") for m in found)


async def test_migrate_applies_every_file_once_and_records_its_checksum(bare_dsn: str) -> None:
    con = await db.connect(bare_dsn)
    try:
        assert await migrate.applied(con) == {}
        assert [m.name for m in await migrate.pending(con)] == [m.name for m in migrate.available()]
        names = await migrate.migrate(con)
        assert names == [m.name for m in migrate.available()]
        assert await migrate.pending(con) == []
        # The schema is really there, not just recorded.
        assert await con.fetchval("SELECT to_regclass('users') IS NOT NULL")
        assert await con.fetchval("SELECT to_regclass('audit_log') IS NOT NULL")
        assert await migrate.migrate(con) == []
    finally:
        await con.close()
    assert [tuple(r) for r in await recorded(bare_dsn)] == expected_rows()


async def test_eight_connections_migrating_at_once_apply_each_migration_once(bare_dsn: str) -> None:
    connections = await asyncio.gather(*(db.connect(bare_dsn) for _ in range(8)))
    try:
        start = asyncio.Event()

        async def worker(con: asyncpg.Connection) -> list[str]:
            await start.wait()
            return await migrate.migrate(con)

        tasks = [asyncio.create_task(worker(c)) for c in connections]
        await asyncio.sleep(0)
        start.set()
        results = await asyncio.wait_for(asyncio.gather(*tasks), timeout=30)
    finally:
        await asyncio.gather(*(c.close() for c in connections))
    applied_names = [name for names in results for name in names]
    assert sorted(applied_names) == sorted(m.name for m in migrate.available())
    assert sum(1 for names in results if names) == 1, "one caller applies everything, the others find nothing to do"
    assert [tuple(r) for r in await recorded(bare_dsn)] == expected_rows()


async def test_four_processes_migrating_at_once_all_succeed_and_apply_each_once(bare_dsn: str) -> None:
    env = {**os.environ, "PSC119_DATABASE_URL": bare_dsn}
    procs = [
        await asyncio.create_subprocess_exec(
            *PSC119, "migrate", cwd=REPO, env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(4)
    ]
    try:
        outputs = await asyncio.wait_for(asyncio.gather(*(p.communicate() for p in procs)), timeout=60)
    finally:
        for p in procs:
            if p.returncode is None:
                p.kill()
                await p.wait()
    for p, (_out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err.decode()
    stdout = [out.decode() for out, _ in outputs]
    for m in migrate.available():
        assert sum(text.count(f"applied {m.name}") for text in stdout) == 1, stdout
    assert sum("migrations are current" in text for text in stdout) == 3, stdout
    assert [tuple(r) for r in await recorded(bare_dsn)] == expected_rows()


async def test_a_changed_migration_is_refused(bare_dsn: str) -> None:
    con = await db.connect(bare_dsn)
    other = await db.connect(bare_dsn)
    try:
        await migrate.migrate(con)
        await con.execute("UPDATE schema_migrations SET checksum = 'x' WHERE version = 1")
        with pytest.raises(migrate.MigrationError, match="0001_"):
            await migrate.pending(con)
        with pytest.raises(migrate.MigrationError, match="0001_"):
            await migrate.migrate(con)
        # The failed run let go of the migration lock: another session can take it at once.
        assert await other.fetchval("SELECT pg_try_advisory_lock($1)", migrate.MIGRATION_LOCK)
        await other.execute("SELECT pg_advisory_unlock($1)", migrate.MIGRATION_LOCK)
        assert await con.fetchval("SELECT checksum FROM schema_migrations WHERE version = 1") == "x"
    finally:
        await other.close()
        await con.close()


async def test_command_line_migrate_refuses_a_changed_migration(empty_dsn: str) -> None:
    con = await asyncpg.connect(empty_dsn)
    try:
        await con.execute("UPDATE schema_migrations SET checksum = 'x' WHERE version = 1")
    finally:
        await con.close()
    proc = await asyncio.create_subprocess_exec(
        *PSC119, "migrate", cwd=REPO, env={**os.environ, "PSC119_DATABASE_URL": empty_dsn},
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 1
    assert "0001_" in err.decode() and "changed" in err.decode()
    assert "Traceback" not in err.decode()
