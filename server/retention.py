"""Retention: personal data past its configured time is deleted or pseudonymised by a daily sweep.

What each class becomes (``[retention]`` in config.toml says after how long):

- GPS track points: deleted.
- Audit log entries: deleted, except the sweep's own ``retention.sweep`` entries, which hold only
  counts and are the record that the policy was applied. No entry holds free text about a patient
  (a decline is audited without its reason): nothing may update the log.
- Consult chat, of ended consults: deleted.
- Recordings and attachments, of ended consults: files deleted, rows kept and marked ``deleted_at``
  (an attachment download then answers 410 Gone); an attachment's user-given file name goes too.
- Closed incidents: caller phone and name, address, complaint and notes blanked, the location rounded
  to about a kilometre; times, priority, kecamatan/kelurahan, outcome and assignments stay, so the
  response-time metrics and the timeline survive. The incident's events lose their ``incident`` copy
  (the intake the crews and consoles were sent); the timeline and the EIDO export never read it. The
  patient is reduced as an ended consult's is: the age kept in tens, the sex kept. The crew's vitals are
  clinical data like the SOAP notes: each set keeps when it was measured and by which unit, its signs are
  cleared. A hospital's reason for declining the pre-arrival notice is replaced. The same goes for their
  copies in the incident's events (``incident.patient``, ``incident.vitals``, ``notice.declined`` and the
  ``notice_declined`` alert). Notice states and times stay, so the offload metrics survive. Consult events
  carry no patient data.
- Ended consults: the patient summary keeps sex and the age in tens, its complaint and question are
  replaced, and so are the SOAP notes, a cancel reason, a referral's reason and a hospital's reason for
  declining it; state, times and the referral decision (hospital, ICD-10 code, answer) stay.

Open incidents and consults that have not ended are never touched, however old. Each class is worked
in batches of ``retention.batch`` rows, one short transaction each. One process sweeps at a time (a
session advisory lock); each run is one ``retention_runs`` row and one audit entry with the counts.
The instant the sweep takes for "now" is a parameter, so a test can run it years ahead.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp import web

from dispatch.vitals import RANGES
from server import audit, consult_files, db, outages
from server.config import Config, RetentionSettings
from server.keys import CONFIG, METRICS, POOL
from server.tasks import cancel_and_wait

log = logging.getLogger(__name__)

SYSTEM = audit.Actor(None, "system")
LOCK = 119000010
ACTION = "retention.sweep"
#: What replaces removed free text (Indonesian: "removed under the retention policy").
REMOVED = "[dihapus: masa retensi]"
#: Keys of an incident event payload that repeat the caller's details.
INCIDENT_EVENT_KEYS = ["incident", "caller_phone", "caller_name", "address", "complaint", "notes"]
#: An event carrying a hospital's reason for declining a pre-arrival notice.
DECLINED = "(payload ? 'reason' AND (type = 'notice.declined' OR payload->>'alert' = 'notice_declined'))"
#: A set of vitals with its signs cleared, merged over an ``incident.vitals`` event's copy.
NO_SIGNS = dict.fromkeys(RANGES)
#: A consult that has ended (a terminal state sets ended_at); the others are never touched.
ENDED = "k.state IN ('completed', 'cancelled', 'expired') AND k.ended_at < $1"
CLASSES = ("tracks", "audit", "chat", "recordings", "attachments", "incidents", "incident_events", "consults")

Counts = dict[str, int]


def cutoff(now: dt.datetime, days: int) -> dt.datetime | None:
    """The instant before which a class is due, or None when it is kept for ever."""
    return None if days == 0 else now - dt.timedelta(days=days)


def due_since(now: dt.datetime, hour_utc: int) -> dt.datetime:
    """The start of the current daily slot: the latest ``hour_utc`` o'clock at or before ``now``."""
    slot = now.astimezone(dt.UTC).replace(hour=hour_utc, minute=0, second=0, microsecond=0)
    return slot if slot <= now else slot - dt.timedelta(days=1)


async def _batches(con: asyncpg.Connection, step: Callable[[], Awaitable[int]], batch: int) -> int:
    """Run ``step`` (one batch in its own transaction) until a batch comes back short."""
    total = 0
    while True:
        async with con.transaction():
            done = await step()
        total += done
        if done < batch:
            return total


def _affected(status: str) -> int:
    return int(status.rsplit(" ", 1)[-1])


async def _tracks(con: asyncpg.Connection, before: dt.datetime, batch: int) -> int:
    return _affected(await con.execute(
        "DELETE FROM unit_track WHERE ctid IN (SELECT ctid FROM unit_track WHERE at < $1 LIMIT $2)", before, batch,
    ))


async def _audit(con: asyncpg.Connection, before: dt.datetime, batch: int) -> int:
    await con.execute("SET LOCAL psc119.retention = 'on'")  # the append-only trigger lets this transaction delete
    return _affected(await con.execute(
        f"""DELETE FROM audit_log WHERE id IN (
                SELECT id FROM audit_log WHERE at < $1 AND action <> '{ACTION}' ORDER BY id LIMIT $2)""",
        before, batch,
    ))


async def _chat(con: asyncpg.Connection, before: dt.datetime, batch: int) -> int:
    return _affected(await con.execute(
        f"""DELETE FROM consult_chat WHERE id IN (
                SELECT c.id FROM consult_chat c JOIN consults k ON k.id = c.consult_id
                WHERE {ENDED} LIMIT $2)""",
        before, batch,
    ))


def _unlink_inside(root: Path, paths: list[str]) -> None:
    for stored in paths:
        path = (root / stored).resolve()
        if path.is_relative_to(root):
            path.unlink(missing_ok=True)
            if path.parent != root:  # a consult's attachment folder, once empty
                with contextlib.suppress(OSError):
                    path.parent.rmdir()
        else:
            log.warning("retention: a stored file path lies outside %s; row marked, file left", root)


async def _files(con: asyncpg.Connection, table: str, path_column: str, extra: str, root: Path,
                 before: dt.datetime, now: dt.datetime, batch: int) -> int:
    # Files go inside the transaction: a failed commit leaves a row whose file is gone, which the next run marks.
    rows = await con.fetch(
        f"""SELECT f.id, f.{path_column} AS path FROM {table} f JOIN consults k ON k.id = f.consult_id
            WHERE f.deleted_at IS NULL AND {ENDED}
            LIMIT $2 FOR UPDATE OF f SKIP LOCKED""",
        before, batch,
    )
    if rows:
        await asyncio.to_thread(_unlink_inside, root, [r["path"] for r in rows])
        await con.execute(f"UPDATE {table} SET deleted_at = $2{extra} WHERE id = ANY($1)", [r["id"] for r in rows], now)
    return len(rows)


async def _incidents(con: asyncpg.Connection, before: dt.datetime, now: dt.datetime, batch: int, counts: Counts) -> int:
    ids = await con.fetch(
        # request_digest is an unsalted hash of the intake: a short intake's number could be guessed back from it.
        """UPDATE incidents SET caller_phone = '', caller_name = NULL, address = '', complaint = '', notes = '', request_digest = '',
                  lat = round(lat::numeric, 2)::float8, lon = round(lon::numeric, 2)::float8, pseudonymised_at = $3
            WHERE id IN (SELECT id FROM incidents WHERE closed_at < $1 AND pseudonymised_at IS NULL
                         ORDER BY closed_at LIMIT $2 FOR UPDATE SKIP LOCKED)
            RETURNING id::text""",
        before, batch, now,
    )
    if ids:
        counts["incident_events"] += await _incident_patients(con, [r["id"] for r in ids])
    return len(ids)


async def _incident_patients(con: asyncpg.Connection, ids: list[str]) -> int:
    """Reduce the patient data of the incidents ``ids`` (being pseudonymised, in the caller's transaction) in its tables and
    in the incidents' events; how many events changed."""
    signs = ", ".join(f"{name} = NULL" for name in RANGES)
    count: int = await con.fetchval(
        f"""WITH patients AS (UPDATE incident_patients SET age = age / 10 * 10 WHERE incident_id = ANY($1::text[]::uuid[]) AND age IS NOT NULL),
            vitals AS (UPDATE incident_vitals SET {signs} WHERE incident_id = ANY($1::text[]::uuid[])),
            notices AS (UPDATE prearrival_notices SET decline_reason = $3 WHERE incident_id = ANY($1::text[]::uuid[]) AND decline_reason IS NOT NULL),
            done AS (UPDATE events SET payload = (CASE
                    WHEN type = 'incident.vitals' AND payload ? 'vitals' THEN jsonb_set(payload, '{{vitals}}', (payload->'vitals') || $4::jsonb)
                    WHEN type = 'incident.patient' AND payload->'patient' ? 'age' THEN jsonb_set(payload, '{{patient,age}}',
                        coalesce(to_jsonb((payload->'patient'->>'age')::int / 10 * 10), 'null'::jsonb))
                    WHEN {DECLINED} THEN jsonb_set(payload, '{{reason}}', to_jsonb($3::text))
                    ELSE payload END) - $2::text[]
                WHERE payload ? 'incident_id' AND payload->>'incident_id' = ANY($1::text[])
                  AND (payload ?| $2::text[] OR type IN ('incident.vitals', 'incident.patient') OR {DECLINED})
                RETURNING 1)
            SELECT count(*) FROM done""",
        ids, INCIDENT_EVENT_KEYS, REMOVED, NO_SIGNS,
    )
    return count


async def _consults(con: asyncpg.Connection, before: dt.datetime, now: dt.datetime, batch: int) -> int:
    # A referral's reason and a hospital's reason for declining it are clinical free text too; its code, hospital and
    # answer stay, like the decision.
    count: int = await con.fetchval(
        f"""WITH done AS (UPDATE consults SET
                patient = jsonb_build_object('age', (patient->>'age')::int / 10 * 10, 'sex', patient->'sex',
                                             'chief_complaint', $4::text, 'question', $4::text),
                outcome = CASE WHEN outcome ? 'soap' THEN jsonb_set(outcome, '{{soap}}', jsonb_build_object(
                    'subjective', $4::text, 'objective', $4::text, 'assessment', $4::text, 'plan', $4::text)) ELSE outcome END
                    || CASE WHEN outcome ? 'referral'
                    THEN jsonb_build_object('referral', (outcome->'referral') || jsonb_build_object('reason', $4::text)) ELSE '{{}}' END,
                cancel_reason = CASE WHEN cancel_reason IS NULL THEN NULL ELSE $4::text END,
                pseudonymised_at = $3
            WHERE id IN (SELECT k.id FROM consults k WHERE {ENDED} AND k.pseudonymised_at IS NULL
                         ORDER BY k.ended_at LIMIT $2 FOR UPDATE SKIP LOCKED) RETURNING id),
            referred AS (UPDATE referrals SET decline_reason = $4::text
                WHERE consult_id IN (SELECT id FROM done) AND decline_reason IS NOT NULL)
            SELECT count(*) FROM done""",
        before, batch, now, REMOVED,
    )
    return count


async def _apply(con: asyncpg.Connection, config: Config, now: dt.datetime) -> Counts:
    settings = config.retention
    batch = settings.batch
    var = Path(config.server.var_dir).resolve()
    counts: Counts = dict.fromkeys(CLASSES, 0)

    async def run(name: str, days: int, step: Callable[[dt.datetime], Awaitable[int]]) -> None:
        before = cutoff(now, days)
        if before is not None:
            counts[name] += await _batches(con, lambda: step(before), batch)

    await run("tracks", settings.tracks_days, lambda b: _tracks(con, b, batch))
    await run("audit", settings.audit_days, lambda b: _audit(con, b, batch))
    await run("chat", settings.chat_days, lambda b: _chat(con, b, batch))
    await run("recordings", settings.recordings_days,
              lambda b: _files(con, "consult_recordings", "path", "", var / "recordings", b, now, batch))
    await run("attachments", settings.attachments_days,
              lambda b: _files(con, "consult_attachments", "stored_path", f", filename = '{REMOVED}'",
                               consult_files.root(config), b, now, batch))
    await run("incidents", settings.incident_personal_days, lambda b: _incidents(con, b, now, batch, counts))
    await run("consults", settings.consult_personal_days, lambda b: _consults(con, b, now, batch))
    return counts


def _days(settings: RetentionSettings) -> dict[str, int]:
    return {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings) if f.name.endswith("_days")}


async def sweep(con: asyncpg.Connection, config: Config, now: dt.datetime, actor: audit.Actor = SYSTEM,
                *, only_if_due: bool = False) -> Counts | None:
    """Apply the retention policy as of ``now``; None when another process holds the sweep or today's run is done."""
    if not await con.fetchval("SELECT pg_try_advisory_lock($1)", LOCK):
        return None
    try:
        if only_if_due:
            since = due_since(now, config.retention.sweep_hour_utc)
            # A run by hand with a later --now does not count as today's.
            if await con.fetchval("SELECT 1 FROM retention_runs WHERE as_of >= $1 AND as_of <= $2", since, now):
                return None
        started = await con.fetchval("SELECT clock_timestamp()")
        counts = await _apply(con, config, now)
        async with con.transaction():
            await con.execute(
                "INSERT INTO retention_runs (started_at, finished_at, as_of, counts) VALUES ($1, clock_timestamp(), $2, $3)",
                started, now, counts,
            )
            await audit.record(con, actor, ACTION, None, {"as_of": now.isoformat(), "counts": counts,
                                                          "days": _days(config.retention)})
        return counts
    finally:
        await con.execute("SELECT pg_advisory_unlock($1)", LOCK)


async def last_run(con: asyncpg.Connection | asyncpg.Pool) -> dict[str, Any] | None:
    """The latest finished run (when, as of when, counts): what a metrics exporter reads."""
    row = await con.fetchrow("SELECT started_at, finished_at, as_of, counts FROM retention_runs ORDER BY id DESC LIMIT 1")
    return None if row is None else dict(row)


async def _scheduled(app: web.Application) -> None:
    async with db.session_scoped(app[POOL]) as con:  # the sweep's lock is a session lock
        counts = await sweep(con, app[CONFIG], dt.datetime.now(dt.UTC), only_if_due=True)
    if counts is not None:
        log.info("retention sweep: %s", json.dumps(counts, sort_keys=True))


async def sweeper(app: web.Application) -> AsyncIterator[None]:
    """The cleanup_ctx looking every ``retention.check_s`` whether the day's sweep is due (after the pool).

    The first look comes one interval after start-up, not during it."""
    check_s = app[CONFIG].retention.check_s

    async def run() -> None:
        await asyncio.sleep(check_s)
        await outages.every(check_s, lambda: _scheduled(app), outages.OutageLog(log, "retention sweep", app[METRICS]))

    task = asyncio.create_task(run(), name="retention-sweep")
    try:
        yield
    finally:
        await cancel_and_wait(task)

