"""Sending units: atomic assignment, acknowledgement, status reports, cancellation, ack timeouts.

Assignment is one conditional UPDATE (``... WHERE status = 'available'``) plus a
partial unique index on active assignments: two operators, or two server
processes, can never send one unit to two incidents. Every change here is one
transaction that also appends its event; its metrics (`server.metrics`) are
recorded once the transaction has committed.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import Any

import asyncpg

from dispatch.doctrine import needs_from_capabilities
from dispatch.incident import IncidentState, state_for_unit_status
from dispatch.status import Actor, ReleaseReason, UnitStatus, parse_unit_status, required_reasons, transition
from dispatch.triage import TriageTable
from server import audit, dispatch_guard, events, incidents
from server.config import DispatchSettings
from server.errors import Conflict, InvalidField, NotFound
from server.fleet import UNIT_COLUMNS, Fleet, unit_snapshot
from server.metrics import Metrics

log = logging.getLogger(__name__)

OPERATORS = incidents.OPERATORS
# The assignment column that records when a unit reached each status.
STATUS_COLUMN = {
    UnitStatus.EN_ROUTE: "acknowledged_at",
    UnitStatus.ON_SCENE: "on_scene_at",
    UnitStatus.TRANSPORTING: "transporting_at",
    UnitStatus.AT_HOSPITAL: "at_hospital_at",
}
INCIDENT_FIRST = {
    UnitStatus.EN_ROUTE: "first_acknowledged_at",
    UnitStatus.ON_SCENE: "first_on_scene_at",
}
ASSIGNMENT_COLUMNS = (
    "id, incident_id, unit_id, assigned_by, assigned_at, ack_deadline, acknowledged_at, on_scene_at, transporting_at, at_hospital_at,"
    " ended_at, end_reason"
)


def assignment_json(row: asyncpg.Record) -> dict[str, Any]:
    data = dict(row)
    data["incident_id"] = str(row["incident_id"])
    return data


def _unit_audience(unit_id: str) -> list[str]:
    return [OPERATORS, f"unit:{unit_id}"]


async def _lock_unit(con: asyncpg.Connection, unit_id: str) -> asyncpg.Record:
    row = await con.fetchrow(f"SELECT {UNIT_COLUMNS} FROM units WHERE id = $1 FOR UPDATE", unit_id)
    if row is None:
        raise NotFound(f"no unit {unit_id}", field="unit_id")
    return row


async def _write_status(
    con: asyncpg.Connection, unit_id: str, status: UnitStatus, by: int | None, incident_key: uuid.UUID | None, reason: str | None,
    at: dt.datetime | None = None, report_id: str | None = None,
) -> asyncpg.Record:
    """Set the unit's status as of ``at`` (default: now) and log it, with the phone's report id if any."""
    row = await con.fetchrow(
        f"UPDATE units SET status = $2, status_since = coalesce($3, now()) WHERE id = $1 RETURNING {UNIT_COLUMNS}",
        unit_id, status.value, at,
    )
    await con.execute(
        """INSERT INTO unit_status_log (unit_id, status, by_user, incident_id, reason, at, report_id)
           VALUES ($1, $2, $3, $4, $5, coalesce($6, now()), $7)""",
        unit_id, status.value, by, incident_key, reason, at, report_id,
    )
    return row


async def assign(
    con: asyncpg.Connection, incident: asyncpg.Record, unit_id: str, actor: audit.Actor, settings: DispatchSettings,
    triage: TriageTable, *, auto: bool, reoffer_of: int | None = None, override: dict[str, Any] | None = None,
) -> asyncpg.Record | None:
    """Assign the unit if it is still available (inside the caller's transaction); None if it is not."""
    unit = await con.fetchrow(
        f"""UPDATE units SET status = 'dispatched', status_since = now()
            WHERE id = $1 AND status = 'available' RETURNING {UNIT_COLUMNS}""",
        unit_id,
    )
    if unit is None:
        return None
    assignment = await con.fetchrow(
        f"""INSERT INTO assignments (incident_id, unit_id, assigned_by, ack_deadline)
            VALUES ($1, $2, $3, now() + make_interval(secs => $4)) RETURNING {ASSIGNMENT_COLUMNS}""",
        incident["id"], unit_id, actor.user_id, settings.ack_timeout_s,
    )
    await con.execute(
        "INSERT INTO unit_status_log (unit_id, status, by_user, incident_id) VALUES ($1, 'dispatched', $2, $3)",
        unit_id, actor.user_id, incident["id"],
    )
    version = await con.fetchval(
        """UPDATE incidents SET status = CASE WHEN status = 'open' THEN 'dispatched' ELSE status END,
               first_dispatched_at = coalesce(first_dispatched_at, now()), assignment_version = assignment_version + 1
           WHERE id = $1 RETURNING assignment_version""",
        incident["id"],
    )
    call_type = triage.get(incident["call_type"]) if incident["call_type"] in triage else None
    await events.append(
        con, "unit.dispatched",
        {
            "incident_id": str(incident["id"]), "assignment_id": assignment["id"], "unit_id": unit_id,
            "callsign": unit["callsign"], "unit": unit_snapshot(unit), "ack_deadline": assignment["ack_deadline"].isoformat(),
            "incident": incidents.crew_view(incident, call_type), "by": actor.username, "auto": auto, "reoffer_of": reoffer_of,
            "assignment_version": version,
            **({"override": override} if override else {}),
        },
        _unit_audience(unit_id),
    )
    await audit.record(con, actor, "unit.dispatch", f"incident:{incident['id']}",
                       {"unit_id": unit_id, "auto": auto, **({"override": override} if override else {})})
    return assignment


async def dispatch(
    pool: asyncpg.Pool, fleet: Fleet, settings: DispatchSettings, triage: TriageTable, actor: audit.Actor,
    incident_id: str, unit_id: str, metrics: Metrics, *, auto: bool = False, expected_version: int | None = None,
    additional: bool = False, override_reason: str | None = None,
) -> dict[str, Any]:
    """Send the unit; the answer is the assignment, with the incident's new assignment version.

    ``expected_version`` is the version the operator saw: any other is refused (409 stale) and
    changes nothing, so the second of two identical requests never sends a unit. A further unit
    for an incident that already has one needs ``additional``.
    """
    async with pool.acquire() as con, con.transaction():
        incident = await incidents.get(con, incident_id, lock=True)
        if incident["closed_at"] is not None:
            raise Conflict("the incident is closed", field="incident_id")
        capabilities = await con.fetchval("SELECT capabilities FROM units WHERE id = $1", unit_id)  # None: no such unit
        refusal = await dispatch_guard.check(con, incident, capabilities, expected_version, additional)
        override = None if refusal else _capability_override(incident, unit_id, capabilities, override_reason)
        assignment = None if refusal else await assign(con, incident, unit_id, actor, settings, triage, auto=auto, override=override)
        if refusal is None and assignment is None:
            status = await con.fetchval("SELECT status FROM units WHERE id = $1", unit_id)
    if refusal is not None:
        raise await dispatch_guard.refused(refusal, pool, fleet, settings, incident)
    if assignment is None:
        if status is None:
            raise NotFound(f"no unit {unit_id}", field="unit_id")
        fresh = await incidents.recommend_for(fleet, settings, incident, exclude=(unit_id,))
        raise Conflict(f"unit {unit_id} is no longer available (it is {status})", field="unit_id", extra=fresh)
    metrics.dispatched("auto" if auto else "operator", incident["received_at"], incident["first_dispatched_at"], assignment["assigned_at"])
    # The incident was locked, and assign bumped its version once.
    return assignment_json(assignment) | {"assignment_version": incident["assignment_version"] + 1}


def _capability_override(
    incident: asyncpg.Record, unit_id: str, capabilities: list[str] | None, reason: str | None
) -> dict[str, Any] | None:
    """None if the unit can serve the incident in either tier; else the override to record, which needs a reason."""
    if capabilities is None:
        raise NotFound(f"no unit {unit_id}", field="unit_id")
    missing = sorted(needs_from_capabilities(incident["needs"]).missing(frozenset(capabilities)))
    if not missing:
        return None
    if reason is None:
        raise InvalidField(f"unit {unit_id} lacks {', '.join(missing)} for this incident; send it with an override_reason",
                           field="unit_id", extra={"missing_capabilities": missing})
    return {"reason": reason, "missing_capabilities": missing}


async def active_assignment(con: asyncpg.Connection, unit_id: str) -> asyncpg.Record | None:
    return await con.fetchrow(f"SELECT {ASSIGNMENT_COLUMNS} FROM assignments WHERE unit_id = $1 AND ended_at IS NULL", unit_id)


async def _advance_incident(con: asyncpg.Connection, incident_key: uuid.UUID, status: UnitStatus, at: dt.datetime) -> None:
    current = IncidentState(await con.fetchval("SELECT status FROM incidents WHERE id = $1 FOR UPDATE", incident_key))
    target = state_for_unit_status(current, status)
    first = INCIDENT_FIRST.get(status)
    sets = [] if target is None else [f"status = '{target.value}'"]
    if first is not None:
        # The first unit to get there, by the crews' times (a late report may be the earlier one).
        sets.append(f"{first} = least({first}, $2::timestamptz)")
    if sets:
        await con.execute(f"UPDATE incidents SET {', '.join(sets)} WHERE id = $1", incident_key, *([at] if first else []))


async def _released(con: asyncpg.Connection, incident_key: uuid.UUID) -> int:
    """A unit left the incident: bump its assignment version; returns the new one."""
    # A withdrawn dispatch leaves the incident waiting for a unit again.
    version: int = await con.fetchval(
        """UPDATE incidents SET assignment_version = assignment_version + 1,
               status = CASE WHEN status = 'dispatched'
                   AND NOT EXISTS (SELECT 1 FROM assignments WHERE incident_id = $1 AND ended_at IS NULL)
                   THEN 'open' ELSE status END
           WHERE id = $1 RETURNING assignment_version""",
        incident_key,
    )
    return version


async def change_status(
    pool: asyncpg.Pool, actor: audit.Actor, unit_id: str, status_value: object, reason_value: object | None,
    metrics: Metrics, *, crew: bool, assignment_id: int | None = None, report_id: str | None = None,
    reported_at: dt.datetime | None = None,
) -> dict[str, Any]:
    """A status report from the crew (or an operator on its behalf); illegal moves change nothing.

    A report the phone kept while it had no signal carries ``reported_at``: it counts at that time,
    bounded by the unit's previous change and now. One that arrives again (same ``report_id``)
    changes nothing and is answered with the unit as it is.
    """
    target = parse_unit_status(status_value)
    reason = _reason(reason_value)
    acknowledged: tuple[dt.datetime, dt.datetime] | None = None
    released: int | None = None
    async with pool.acquire() as con, con.transaction():
        unit = await _lock_unit(con, unit_id)
        current = UnitStatus(unit["status"])
        if report_id is not None and await con.fetchval(
            "SELECT 1 FROM unit_status_log WHERE unit_id = $1 AND report_id = $2", unit_id, report_id
        ):
            return {"unit_id": unit_id, "callsign": unit["callsign"], "unit": unit_snapshot(unit), "status": current.value,
                    "duplicate": True}
        now: dt.datetime = await con.fetchval("SELECT now()")
        at = now if reported_at is None else min(max(reported_at, unit["status_since"]), now)
        assignment = await active_assignment(con, unit_id)
        if assignment_id is not None and (assignment is None or assignment["id"] != assignment_id):
            raise Conflict("that dispatch is no longer active for this unit", field="assignment_id")
        transition(current, target, Actor.CREW if crew else Actor.SERVER, reason)
        incident_key = assignment["incident_id"] if assignment else None
        row = await _write_status(con, unit_id, target, actor.user_id, incident_key, reason.value if reason else None, at, report_id)
        if assignment is not None:
            column = STATUS_COLUMN.get(target)
            if column is not None:
                if target is UnitStatus.EN_ROUTE and assignment["acknowledged_at"] is None:
                    acknowledged = (assignment["assigned_at"], at)
                await con.execute(f"UPDATE assignments SET {column} = $2 WHERE id = $1", assignment["id"], at)
                await _advance_incident(con, assignment["incident_id"], target, at)
            elif target is UnitStatus.AVAILABLE:
                end = reason.value if reason else "completed"
                await con.execute("UPDATE assignments SET ended_at = $3, end_reason = $2 WHERE id = $1", assignment["id"], end, at)
                released = await _released(con, assignment["incident_id"])
        payload: dict[str, Any] = {
            "unit_id": unit_id, "callsign": row["callsign"], "unit": unit_snapshot(row), "status": target.value,
            "previous": current.value, "reason": reason.value if reason else None, "by": actor.username,
        }
        if reported_at is not None:
            payload["reported_at"] = at.isoformat()  # the crew's time, when the report came late
        if assignment is not None:
            payload |= {"incident_id": str(incident_key), "assignment_id": assignment["id"]}
        if released is not None:
            payload["assignment_version"] = released
        await events.append(con, "unit.status", payload, _unit_audience(unit_id))
        await audit.record(con, actor, "unit.status", f"unit:{unit_id}", {"status": target.value, "previous": current.value})
    if acknowledged is not None:
        metrics.acknowledged(crew, *acknowledged)
    return payload


def _reason(value: object | None) -> ReleaseReason | None:
    if value is None:
        return None
    try:
        return ReleaseReason(value)
    except ValueError:
        choices = ", ".join(r.value for r in ReleaseReason)
        raise InvalidField(f"unknown reason; one of {choices}", field="reason") from None


async def acknowledge(
    pool: asyncpg.Pool, actor: audit.Actor, unit_id: str, assignment_id: int, metrics: Metrics,
    *, report_id: str | None = None, reported_at: dt.datetime | None = None,
) -> dict[str, Any]:
    """The crew accepts the dispatch: it is en route."""
    return await change_status(
        pool, actor, unit_id, UnitStatus.EN_ROUTE.value, None, metrics, crew=True, assignment_id=assignment_id,
        report_id=report_id, reported_at=reported_at,
    )


async def cancel(pool: asyncpg.Pool, actor: audit.Actor, incident_id: str, assignment_id: int) -> dict[str, Any]:
    async with pool.acquire() as con, con.transaction():
        incident = await incidents.get(con, incident_id, lock=True)
        assignment = await con.fetchrow(
            f"SELECT {ASSIGNMENT_COLUMNS} FROM assignments WHERE id = $1 AND incident_id = $2 FOR UPDATE", assignment_id, incident["id"]
        )
        if assignment is None:
            raise NotFound(f"no assignment {assignment_id} on this incident", field="assignment_id")
        if assignment["ended_at"] is not None:
            raise Conflict("that assignment has already ended", field="assignment_id")
        unit = await _lock_unit(con, assignment["unit_id"])
        current = UnitStatus(unit["status"])
        if ReleaseReason.CANCELLED not in required_reasons(current, UnitStatus.AVAILABLE):
            raise Conflict(f"a unit that is {current.value} cannot be withdrawn; the crew clears it", field="assignment_id")
        await _withdraw(con, assignment, unit, current, ReleaseReason.CANCELLED, actor)
    return {"assignment_id": assignment_id, "unit_id": assignment["unit_id"], "status": "cancelled"}


async def _withdraw(
    con: asyncpg.Connection, assignment: asyncpg.Record, unit: asyncpg.Record, current: UnitStatus,
    reason: ReleaseReason, actor: audit.Actor,
) -> None:
    row = await _write_status(con, unit["id"], UnitStatus.AVAILABLE, actor.user_id, assignment["incident_id"], reason.value)
    await con.execute("UPDATE assignments SET ended_at = now(), end_reason = $2 WHERE id = $1", assignment["id"], reason.value)
    version = await _released(con, assignment["incident_id"])
    await events.append(
        con, "dispatch.withdrawn",
        {
            "incident_id": str(assignment["incident_id"]), "assignment_id": assignment["id"], "unit_id": unit["id"],
            "callsign": unit["callsign"], "unit": unit_snapshot(row), "previous": current.value, "reason": reason.value,
            "by": actor.username, "assignment_version": version,
        },
        _unit_audience(unit["id"]),
    )
    await audit.record(con, actor, "unit.withdraw", f"incident:{assignment['incident_id']}", {"unit_id": unit["id"], "reason": reason.value})


SYSTEM = audit.Actor(user_id=None, username="system")


async def sweep_ack_timeouts(
    pool: asyncpg.Pool, fleet: Fleet, settings: DispatchSettings, triage: TriageTable, metrics: Metrics
) -> int:
    """Withdraw dispatches past their acknowledgement deadline and offer the next candidate; return how many."""
    reoffers: list[tuple[asyncpg.Record, asyncpg.Record | None] | None] = []
    async with pool.acquire() as con, con.transaction():
        overdue = await con.fetch(
            f"""SELECT {ASSIGNMENT_COLUMNS} FROM assignments
                WHERE acknowledged_at IS NULL AND ended_at IS NULL AND ack_deadline <= now()
                ORDER BY ack_deadline LIMIT 20 FOR UPDATE SKIP LOCKED"""
        )
        for assignment in overdue:
            unit = await _lock_unit(con, assignment["unit_id"])
            current = UnitStatus(unit["status"])
            await _withdraw(con, assignment, unit, current, ReleaseReason.NOT_RESPONDING, SYSTEM)
            reoffer = await _reoffer(con, fleet, settings, triage, assignment)
            # The alert names the unit offered in its place, so the operator need not look it up.
            offered = reoffer[1] if reoffer is not None else None
            offered_id = offered["unit_id"] if offered is not None else None
            await _alert(
                con, "ack_timeout", assignment["incident_id"], unit_id=unit["id"], callsign=unit["callsign"],
                offered_unit_id=offered_id,
                offered_callsign=await con.fetchval("SELECT callsign FROM units WHERE id = $1", offered_id) if offered_id else None,
            )
            reoffers.append(reoffer)
    for reoffer in reoffers:
        metrics.ack_timed_out()
        if reoffer is not None:
            incident, offered = reoffer
            metrics.reoffered(offered is not None)
            if offered is not None:
                metrics.dispatched("reoffer", incident["received_at"], incident["first_dispatched_at"], offered["assigned_at"])
    return len(overdue)


async def _reoffer(
    con: asyncpg.Connection, fleet: Fleet, settings: DispatchSettings, triage: TriageTable, withdrawn: asyncpg.Record
) -> tuple[asyncpg.Record, asyncpg.Record | None] | None:
    """The incident and the unit's new assignment (None: no unit left); None if the incident is closed."""
    incident = await incidents.get(con, str(withdrawn["incident_id"]), lock=True)
    if incident["closed_at"] is not None:
        return None
    # Units that did not respond to this incident, or already serve it, are not offered again.
    tried = await con.fetch(
        "SELECT unit_id FROM assignments WHERE incident_id = $1 AND (end_reason = 'not_responding' OR ended_at IS NULL)",
        incident["id"],
    )
    exclude = tuple({r["unit_id"] for r in tried} | {withdrawn["unit_id"]})
    tiers = await incidents.recommend_for(fleet, settings, incident, exclude=exclude, catch_up=False)
    # The tier the incident lacks now: a carrier that did not answer is replaced by a carrier, unless no first responder serves.
    serving = await con.fetch(
        "SELECT u.capabilities FROM assignments a JOIN units u ON u.id = a.unit_id WHERE a.incident_id = $1 AND a.ended_at IS NULL",
        incident["id"],
    )
    carrier_next = needs_from_capabilities(incident["needs"]).carrier_next(frozenset(r["capabilities"]) for r in serving)
    for candidate in tiers["transport"] if carrier_next else tiers["recommendations"]:
        offered = await assign(con, incident, candidate["unit_id"], SYSTEM, settings, triage, auto=True, reoffer_of=withdrawn["id"])
        if offered is not None:
            return incident, offered
    await _alert(con, "no_unit_available", incident["id"])
    return incident, None


async def _alert(con: asyncpg.Connection, kind: str, incident_key: uuid.UUID, **detail: Any) -> None:
    await events.append(con, "alert", {"alert": kind, "incident_id": str(incident_key), **detail}, [OPERATORS])
