"""Backup runs: recorded in ``backup_runs``, taken on schedule by one process of several, alerted on failure.

Each run is a row (migration 0009): claimed by inserting it, finished with ``ok`` and the
file and its size, or the error. A failed run appends an ``alert`` event
(``backup_failed``) for the administrators. The scheduler (`scheduler`, a
`cleanup_ctx`) looks every minute at most (from a minute after start-up) whether ``backup.interval_h`` has passed since
the last scheduled run started; the check and the claim happen under a transaction
advisory lock, so of several processes exactly one takes each interval. After a good
scheduled backup the oldest archives beyond ``backup.keep`` are deleted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp import web

from server import backup, events, outages
from server.config import Config
from server.keys import CONFIG, METRICS, POOL
from server.login_limits import ADMINS
from server.tasks import cancel_and_wait

log = logging.getLogger(__name__)

# An arbitrary constant: the advisory lock key reserved for claiming a scheduled backup.
BACKUP_LOCK = 119_000_009
CHECK_MAX_S = 60.0
ERROR_MAX = 500


async def claim(pool: asyncpg.Pool, interval_s: float | None) -> int | None:
    """Insert a run row and return its id; with ``interval_s``, only if a scheduled run is due."""
    async with pool.acquire() as con, con.transaction():
        if interval_s is not None:
            await con.execute("SELECT pg_advisory_xact_lock($1)", BACKUP_LOCK)
            due = await con.fetchval(
                "SELECT coalesce(max(started_at) <= now() - make_interval(secs => $1), true) FROM backup_runs WHERE scheduled",
                interval_s,
            )
            if not due:
                return None
        run_id: int = await con.fetchval("INSERT INTO backup_runs (scheduled) VALUES ($1) RETURNING id", interval_s is not None)
        return run_id


async def finish(pool: asyncpg.Pool, run_id: int, result: tuple[Path, int] | None, error: str | None) -> None:
    file, size = (str(result[0]), result[1]) if result else (None, None)
    async with pool.acquire() as con, con.transaction():
        await con.execute(
            "UPDATE backup_runs SET finished_at = now(), ok = $2, file = $3, bytes = $4, error = $5 WHERE id = $1",
            run_id, error is None, file, size, error,
        )  # fmt: skip
        if error is not None:
            await events.append(con, "alert", {"alert": "backup_failed", "run": run_id, "error": error}, [ADMINS])


async def perform(pool: asyncpg.Pool, dsn: str, config: Config, run_id: int, into: Path) -> tuple[Path, int]:
    """Make the backup of a claimed run and record how it went; a failure raises after it is recorded."""
    try:
        result = await backup.create(dsn, config, into)
    except Exception as exc:
        error = str(exc) if isinstance(exc, (backup.BackupError, OSError)) else type(exc).__name__
        log.error("backup failed: %s", error)
        await asyncio.shield(finish(pool, run_id, None, error[:ERROR_MAX]))
        raise
    await finish(pool, run_id, result, None)
    return result


async def last_success(con: asyncpg.Connection | asyncpg.Pool) -> dict[str, Any] | None:
    """When the last good backup finished and how long ago (for /readyz); None if there was none."""
    row = await con.fetchrow(
        """SELECT finished_at, extract(epoch FROM now() - finished_at)::float8 AS age_s
             FROM backup_runs WHERE ok ORDER BY finished_at DESC LIMIT 1"""
    )
    if row is None:
        return None
    return {"finished_at": row["finished_at"], "age_s": round(row["age_s"], 1)}


def scheduler(dsn: str) -> Callable[[web.Application], AsyncIterator[None]]:
    """The cleanup_ctx of scheduled backups (nothing when ``backup.interval_h`` is 0)."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        config = app[CONFIG]
        interval_s = config.backup.interval_h * 3600
        if interval_s == 0:
            yield
            return
        into = backup.directory(config)

        async def step() -> None:
            run_id = await claim(app[POOL], interval_s)
            if run_id is None:
                return
            try:
                await perform(app[POOL], dsn, config, run_id, into)
            except (backup.BackupError, OSError):
                return  # recorded and alerted; the next interval tries again
            for gone in await asyncio.to_thread(backup.prune, into, config.backup.keep):
                log.info("deleted old backup %s", gone.name)

        async def loop() -> None:
            check_s = min(CHECK_MAX_S, interval_s / 4)
            await asyncio.sleep(check_s)  # a process that only starts and stops (a test, a crash loop) dumps nothing
            await outages.every(check_s, step, outages.OutageLog(log, "scheduled backup", app[METRICS]))

        task = asyncio.create_task(loop(), name="backups")
        yield
        await cancel_and_wait(task)

    return ctx
