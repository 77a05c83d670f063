"""The background sweep of waiting consult requests: escalate the overdue, expire the dead.

Every ``consult.sweep_s`` each server process locks the due requests with
``FOR UPDATE SKIP LOCKED`` and applies `signaling.routing.sweep` to them in one
transaction. A row another process holds is skipped, and a request escalated by
another process is no longer due (``escalated_at`` is set) once its lock is gone,
so a request is escalated exactly once however many processes sweep.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import uuid
from collections.abc import AsyncIterator

import asyncpg
from aiohttp import web

from server import audit, consults, events, oncall, outages
from server.keys import CONFIG, METRICS, POOL
from signaling import routing

log = logging.getLogger(__name__)

SYSTEM = audit.Actor(None, "system")
BATCH = 200


async def sweep_once(con: asyncpg.Connection, at: dt.datetime) -> routing.Sweep:
    async with con.transaction():
        rows = await con.fetch(
            f"""SELECT {consults.COLUMNS} FROM consults
                WHERE state = 'requested' AND (expires_at <= $1 OR (respond_by <= $1 AND escalated_at IS NULL))
                ORDER BY respond_by LIMIT {BATCH} FOR UPDATE SKIP LOCKED""",
            at,
        )
        if not rows:
            return routing.Sweep((), ())
        found = {s.id: s for s in map(consults.Stored.from_row, rows)}
        decision = routing.sweep((s.consult for s in found.values()), at, await oncall.roster(con), await consults.admins(con))
        for consult_id in decision.expire:
            before = found[consult_id]
            expired = before.consult.expire(at)
            await consults.commit(con, before, expired, SYSTEM, "consult.expired", audience={f"specialty:{expired.specialty.value}"})
        for escalation in decision.escalate:
            stored = found[escalation.consult_id]
            await con.execute("UPDATE consults SET escalated_at = $2 WHERE id = $1", uuid.UUID(stored.id), at)
            payload = {**stored.summary(), "overdue_s": escalation.overdue_by.total_seconds()}
            audience = {"role:admin", f"consult:{stored.id}", f"facility:{stored.facility}", f"user:{stored.consult.requester}"}
            audience |= {f"user:{u}" for u in escalation.recipients}
            await events.append(con, "consult.overdue", payload, audience)
            await audit.record(con, SYSTEM, "consult.escalated", f"consult:{stored.id}", {"notified": len(escalation.recipients)})
    return decision


async def _sweep(app: web.Application) -> None:
    async with app[POOL].acquire() as con:
        decision = await sweep_once(con, consults.now())
    if decision.expire or decision.escalate:
        log.info("consult sweep: %d expired, %d escalated", len(decision.expire), len(decision.escalate))


async def sweeper(app: web.Application) -> AsyncIterator[None]:
    """The cleanup_ctx running the sweep (after the database pool)."""
    run = outages.every(app[CONFIG].consult.sweep_s, lambda: _sweep(app), outages.OutageLog(log, "consult sweep", app[METRICS]))
    task = asyncio.create_task(run, name="consult-sweep")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
