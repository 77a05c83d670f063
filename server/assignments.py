"""Sending units: atomic assignment, acknowledgement, status reports, cancellation, ack timeouts.

The rules are the core's (`dispatch.assignment`): each change here locks the incident, then the
unit, loads the facts, asks the core, and applies its decision in one transaction that also appends
the decision's events; its metrics (`server.metrics`) are recorded once the transaction has committed.
The database keeps its own guards beneath the core's: a conditional UPDATE (``... WHERE status =
'available'``) and a partial unique index on active assignments, so two operators, or two server
processes, can never send one unit to two incidents.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import Any, NamedTuple

import asyncpg

from dispatch import assignment as core
from dispatch.assignment import Decision, IncidentFacts, UnitFacts
from dispatch.errors import AlreadyServed, MissingCapabilities, NotWithdrawable, StaleVersion, UnitNotAvailable
from dispatch.status import Actor, ReleaseReason, UnitStatus, parse_unit_status
from dispatch.triage import TriageTable
from server import audit, decisions, dispatch_guard, events, incidents, phone_presence, prearrival, sessions
from server.config import DispatchSettings
from server.errors import Conflict, InvalidField, NotFound
from server.fleet import UNIT_COLUMNS, Fleet, unit_snapshot
from server.metrics import Metrics
from server.revocation import SessionEnded
from server.statements import Params

log = logging.getLogger(__name__)

OPERATORS = incidents.OPERATORS
# The assignment column that records when a unit reached each status.
STATUS_COLUMN = {
    UnitStatus.EN_ROUTE: "acknowledged_at",
    UnitStatus.ON_SCENE: "on_scene_at",
    UnitStatus.TRANSPORTING: "transporting_at",
    UnitStatus.AT_HOSPITAL: "at_hospital_at",
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


async def _lock_unit(
    con: asyncpg.Connection, unit_id: str, serving_of: uuid.UUID | None = None, *, phone_offline_s: float | None = None,
) -> asyncpg.Record:
    """The unit's row, locked, with ``tx_now``: the transaction's time, the time every row of this change records
    (read with the lock, not in a round trip of its own); with ``serving_of``, an incident this transaction has
    locked, also ``serving``: the units on it (`decisions.serving_sql`); with ``phone_offline_s``, also
    ``phone_last_seen`` and ``phone_connected``, its phone's presence (`server.phone_presence`)."""
    params = Params()
    key = params.add(unit_id)
    columns, joined = [UNIT_COLUMNS, "now() AS tx_now"], ""
    if serving_of is not None:
        columns.append(f"{decisions.serving_sql(params.add(serving_of))} AS serving")
    if phone_offline_s is not None:
        columns.append("phone.last_seen AS phone_last_seen, phone.connected AS phone_connected")
        presence = phone_presence.presence_sql(f"ARRAY[{key}]::text[]", params.add(phone_offline_s))
        joined = f" LEFT JOIN LATERAL ({presence}) AS phone ON true"
    row = await con.fetchrow(f"SELECT {', '.join(columns)} FROM units{joined} WHERE id = {key} FOR UPDATE OF units", *params.values)
    if row is None:
        raise NotFound(f"no unit {unit_id}", field="unit_id")
    return row


def _status_steps(
    unit: asyncpg.Record, status: UnitStatus, by: int | None, incident_key: uuid.UUID | None, reason: str | None,
    audited: audit.Entry, at: dt.datetime, report_id: str | None = None, assignment: tuple[int, dict[str, Any]] | None = None,
) -> tuple[decisions.Steps, dict[str, Any]]:
    """Setting the (locked) ``unit``'s status as of ``at``, its log row with the phone's report id if any, the
    change's audit entry and, if given, the columns of its assignment (id, {column: value}): the steps of one
    statement, and the unit's row as they leave it (it is locked: nothing else changes it meanwhile)."""
    params = Params()
    unit_id, to, since = params.add(unit["id"]), params.add(status.value), params.add(at)
    sql = [f"""logged AS (INSERT INTO unit_status_log (unit_id, status, by_user, incident_id, reason, at, report_id)
                          VALUES ({unit_id}, {to}, {params.add_all((by, incident_key, reason))}, {since}, {params.add(report_id)}))""",
           audited.cte(params),
           f"unit_set AS (UPDATE units SET status = {to}, status_since = {since} WHERE id = {unit_id})"]
    if assignment is not None:
        sets = ", ".join(f"{column} = {params.add(value)}" for column, value in assignment[1].items())
        sql.append(f"touched AS (UPDATE assignments SET {sets} WHERE id = {params.add(assignment[0])})")
    steps = decisions.Steps(tuple(sql), params)
    return steps, dict(unit) | {"status": status.value, "status_since": at}


async def _send(
    con: asyncpg.Connection, incident: asyncpg.Record, facts: IncidentFacts, serving: tuple[UnitFacts, ...] | None, unit_id: str,
    actor: audit.Actor, settings: DispatchSettings, triage: TriageTable, *, auto: bool, reoffer_of: int | None = None,
    expected_version: int | None = None, additional: bool = False, override_reason: str | None = None,
) -> tuple[asyncpg.Record, Decision, dict[str, Any]]:
    """Decide and apply one dispatch inside the caller's transaction (which locked the incident); raises the core's
    refusals. ``serving`` None: read with the unit's lock. The assignment, the decision, and the unit's phone as
    `phone_presence.phones` gives it (read with the unit's lock)."""
    unit = await _lock_unit(con, unit_id, serving_of=incident["id"] if serving is None else None, phone_offline_s=settings.phone_offline_s)
    if serving is None:
        serving = decisions.serving_facts(unit["serving"])
    decision = core.assign(facts, serving, decisions.unit_facts(unit), at=unit["tx_now"], expected_version=expected_version,
                           additional=additional, override_reason=override_reason)
    assert decision.unit_status is not None
    override = decision.override.to_dict() if decision.override else None
    audited = audit.Entry(actor, "unit.dispatch", f"incident:{incident['id']}",
                          {"unit_id": unit_id, "auto": auto, **({"override": override} if override else {})})
    # The unit's status, its log row, the audit entry and the assignment in one statement. The unit is locked, so
    # its conditional UPDATE matches; it is the database's own guard against sending a busy unit.
    params = Params()
    key, unit_key, by, to = params.add(incident["id"]), params.add(unit_id), params.add(actor.user_id), params.add(decision.unit_status.value)
    assignment = await con.fetchrow(
        f"""WITH sent AS (
                UPDATE units SET status = {to}, status_since = now() WHERE id = {unit_key} AND status = 'available' RETURNING id),
            logged AS (
                INSERT INTO unit_status_log (unit_id, status, by_user, incident_id) SELECT {unit_key}, {to}, {by}, {key} FROM sent),
            {audited.cte(params)}
            INSERT INTO assignments (incident_id, unit_id, assigned_by, ack_deadline)
            SELECT {key}, {unit_key}, {by}, now() + make_interval(secs => {params.add(settings.ack_timeout_s)}) FROM sent
            RETURNING {ASSIGNMENT_COLUMNS}""",
        *params.values,
    )
    if assignment is None:
        raise UnitNotAvailable(unit_id, unit["status"])
    # As the UPDATE left it: now() is the transaction's time.
    updated = dict(unit) | {"status": decision.unit_status.value, "status_since": unit["tx_now"]}
    call_type = triage.get(incident["call_type"]) if incident["call_type"] in triage else None
    base = {
        "incident_id": str(incident["id"]), "assignment_id": assignment["id"], "unit_id": unit_id,
        "callsign": updated["callsign"], "unit": unit_snapshot(updated), "ack_deadline": assignment["ack_deadline"].isoformat(),
        "incident": incidents.crew_view(incident, call_type), "by": actor.username, "auto": auto, "reoffer_of": reoffer_of,
    }
    await decisions.apply(con, incident["id"], facts, decision, announced=(base, _unit_audience(unit_id)))
    heard = [] if unit["phone_last_seen"] is None else [(unit_id, unit["phone_last_seen"], unit["phone_connected"])]
    return assignment, decision, phone_presence.presence(heard, [unit_id])[unit_id]


class Sent(NamedTuple):
    """A dispatch done: the assignment (with the incident's new assignment version) and the unit's phone then."""

    assignment: dict[str, Any]
    phone: dict[str, Any]


async def dispatch(
    pool: asyncpg.Pool, fleet: Fleet, settings: DispatchSettings, triage: TriageTable, actor: audit.Actor,
    incident_id: str, unit_id: str, metrics: Metrics, *, auto: bool = False, expected_version: int | None = None,
    additional: bool = False, override_reason: str | None = None,
) -> Sent:
    """Send the unit; the answer is the assignment, with the incident's new assignment version, and its phone.

    ``expected_version`` is the version the operator saw: any other is refused (409 stale) and
    changes nothing, so the second of two identical requests never sends a unit. A further unit
    for an incident that already has one needs ``additional``. The rules are the core's
    (`dispatch.assignment.assign`); its refusals become the HTTP errors here.
    """
    try:
        async with pool.acquire() as con, con.transaction():
            incident = await incidents.get(con, incident_id, lock=True)
            assignment, decision, phone = await _send(
                con, incident, decisions.incident_facts(incident), None, unit_id, actor,
                settings, triage, auto=auto, expected_version=expected_version, additional=additional, override_reason=override_reason,
            )
    except (StaleVersion, AlreadyServed) as exc:
        raise await dispatch_guard.refused(exc, pool, fleet, settings, incident) from None
    except UnitNotAvailable as exc:
        fresh = await incidents.recommend_for(fleet, settings, incident, exclude=(unit_id,))
        raise Conflict(str(exc), field="unit_id", extra=fresh) from None
    metrics.dispatched("auto" if auto else "operator", incident["received_at"], incident["first_dispatched_at"], assignment["assigned_at"])
    return Sent(assignment_json(assignment) | {"assignment_version": decision.version}, phone)


async def active_assignment(con: asyncpg.Connection, unit_id: str) -> asyncpg.Record | None:
    return await con.fetchrow(f"SELECT {ASSIGNMENT_COLUMNS} FROM assignments WHERE unit_id = $1 AND ended_at IS NULL", unit_id)


async def change_status(
    pool: asyncpg.Pool, actor: audit.Actor, unit_id: str, status_value: object, reason_value: object | None,
    metrics: Metrics, *, crew: bool, assignment_id: int | None = None, report_id: str | None = None,
    reported_at: dt.datetime | None = None, session_id: int | None = None,
) -> dict[str, Any]:
    """A status report from the crew (or an operator on its behalf); illegal moves change nothing.

    A report the phone kept while it had no signal carries ``reported_at``: it counts at that time,
    bounded by the unit's previous change and now. One that arrives again (same ``report_id``)
    changes nothing and is answered with the unit as it is. What it does to the unit and its
    incident is the core's decision (`dispatch.assignment.report`). With ``session_id`` (a phone's socket), the
    session is read in the change's own transaction: one that has ended is refused (`SessionEnded`).
    """
    target = parse_unit_status(status_value)
    reason = _reason(reason_value)
    acknowledged: tuple[dt.datetime, dt.datetime] | None = None
    async with pool.acquire() as con, con.transaction():
        incident, unit, found = await _lock_unit_and_incident(con, unit_id, report_id, session_id)
        if not found["session_live"]:
            raise SessionEnded()
        current = UnitStatus(unit["status"])
        if found["duplicate"]:
            return {"unit_id": unit_id, "callsign": unit["callsign"], "unit": unit_snapshot(unit), "status": current.value,
                    "duplicate": True}
        now = unit["tx_now"]
        at = now if reported_at is None else min(max(reported_at, unit["status_since"]), now)
        assignment = found if found["id"] is not None else None
        if assignment_id is not None and (assignment is None or assignment["id"] != assignment_id):
            raise Conflict("that dispatch is no longer active for this unit", field="assignment_id")
        incident_key = assignment["incident_id"] if assignment else None
        facts = None
        serving: tuple[UnitFacts, ...] = ()
        if incident is not None:
            facts, serving = decisions.incident_facts(incident), decisions.serving_facts(found["serving"])
        decision = core.report(facts, serving, decisions.unit_facts(unit), target, actor=Actor.CREW if crew else Actor.SERVER,
                               reason=reason, at=at)
        audited = audit.Entry(actor, "unit.status", f"unit:{unit_id}", {"status": target.value, "previous": current.value})
        touched: tuple[int, dict[str, Any]] | None = None
        if assignment is not None and facts is not None:
            column = STATUS_COLUMN.get(target)
            if column is not None:
                if target is UnitStatus.EN_ROUTE and assignment["acknowledged_at"] is None:
                    acknowledged = (assignment["assigned_at"], at)
                touched = (assignment["id"], {column: at})
            elif target is UnitStatus.AVAILABLE:
                touched = (assignment["id"], {"ended_at": at, "end_reason": reason.value if reason else "completed"})
        steps, row = _status_steps(unit, target, actor.user_id, incident_key, reason.value if reason else None, audited, at, report_id,
                                   touched)
        base: dict[str, Any] = {"unit_id": unit_id, "callsign": row["callsign"], "unit": unit_snapshot(row), "by": actor.username}
        if reported_at is not None:
            base["reported_at"] = at.isoformat()  # the crew's time, when the report came late
        if assignment is not None:
            base |= {"incident_id": str(incident_key), "assignment_id": assignment["id"]}
        if assignment is not None and facts is not None:
            await decisions.apply(con, assignment["incident_id"], facts, decision, announced=(base, _unit_audience(unit_id)), first=steps)
        else:
            await steps.write(con)
            await decisions.announce(con, decision, base, _unit_audience(unit_id))
        if incident_key is not None and incident is not None and incident["destination"] is not None:
            # Only an incident with a destination can have a hospital expecting it: no extra read for the others.
            await prearrival.follow_unit(con, incident_key, unit_id, target.value)
    if acknowledged is not None:
        metrics.acknowledged(crew, *acknowledged)
    return base | dict(decision.events[0].data)


async def _lock_unit_and_incident(
    con: asyncpg.Connection, unit_id: str, report_id: str | None, session_id: int | None
) -> tuple[asyncpg.Record | None, asyncpg.Record, asyncpg.Record]:
    """Lock the incident the unit serves, then the unit (the order every change takes); the incident, the unit, and
    the unit's active assignment (its ``id`` None if it has none) with ``serving``, the units on its incident, and
    ``duplicate``, whether the phone's report ``report_id`` was taken already, and ``session_live``, whether the
    session ``session_id`` (if any) is still live."""
    while True:
        # The incident of the unit's dispatch, found and locked in one statement.
        incident = await con.fetchrow(
            f"""SELECT {incidents.INCIDENT_COLUMNS} FROM incidents
                WHERE id = (SELECT incident_id FROM assignments WHERE unit_id = $1 AND ended_at IS NULL) FOR UPDATE""",
            unit_id,
        )
        key = None if incident is None else incident["id"]
        unit = await _lock_unit(con, unit_id)
        # Read once the unit is locked: a dispatch that held it is committed and seen.
        assignment = await con.fetchrow(
            f"""SELECT {ASSIGNMENT_COLUMNS}, {decisions.serving_sql('mine.incident_id')} AS serving,
                       EXISTS (SELECT 1 FROM unit_status_log WHERE unit_id = $1 AND report_id = $2) AS duplicate,
                       $3::bigint IS NULL OR {sessions.live_sql('$3')} AS session_live
                FROM (VALUES (1)) AS one LEFT JOIN assignments mine ON mine.unit_id = $1 AND mine.ended_at IS NULL""",
            unit_id, report_id, session_id,
        )
        # Another change may have ended or made the unit's dispatch in between: lock that incident too.
        if assignment["incident_id"] == key:
            return incident, unit, assignment


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
    *, report_id: str | None = None, reported_at: dt.datetime | None = None, session_id: int | None = None,
) -> dict[str, Any]:
    """The crew accepts the dispatch: it is en route."""
    return await change_status(
        pool, actor, unit_id, UnitStatus.EN_ROUTE.value, None, metrics, crew=True, assignment_id=assignment_id,
        report_id=report_id, reported_at=reported_at, session_id=session_id,
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
        await _withdraw(con, incident, assignment, ReleaseReason.CANCELLED, actor)
    return {"assignment_id": assignment_id, "unit_id": assignment["unit_id"], "status": "cancelled"}


async def _withdraw(
    con: asyncpg.Connection, incident: asyncpg.Record, assignment: asyncpg.Record, reason: ReleaseReason, actor: audit.Actor,
) -> tuple[IncidentFacts, tuple[UnitFacts, ...]]:
    """Withdraw the assignment's unit (the incident locked); the incident and the units still on it, afterwards."""
    unit = await _lock_unit(con, assignment["unit_id"], serving_of=incident["id"])
    facts, serving = decisions.incident_facts(incident), decisions.serving_facts(unit["serving"])
    try:
        decision = core.withdraw(facts, serving, decisions.unit_facts(unit), reason)
    except NotWithdrawable as exc:
        raise Conflict(str(exc), field="assignment_id") from None
    assert decision.unit_status is not None
    audited = audit.Entry(actor, "unit.withdraw", f"incident:{assignment['incident_id']}", {"unit_id": unit["id"], "reason": reason.value})
    steps, row = _status_steps(unit, decision.unit_status, actor.user_id, assignment["incident_id"], reason.value, audited, unit["tx_now"],
                               assignment=(assignment["id"], {"ended_at": unit["tx_now"], "end_reason": reason.value}))
    await decisions.apply(
        con, incident["id"], facts, decision,
        announced=({"incident_id": str(assignment["incident_id"]), "assignment_id": assignment["id"], "unit_id": unit["id"],
                    "callsign": unit["callsign"], "unit": unit_snapshot(row), "by": actor.username}, _unit_audience(unit["id"])),
        first=steps,
    )
    return facts.after(decision), tuple(s for s in serving if s.id != unit["id"])


SYSTEM = audit.Actor(user_id=None, username="system")


async def sweep_ack_timeouts(
    pool: asyncpg.Pool, fleet: Fleet, settings: DispatchSettings, triage: TriageTable, metrics: Metrics
) -> int:
    """Withdraw dispatches past their acknowledgement deadline and offer the next candidate; return how many."""
    reoffers: list[tuple[asyncpg.Record, asyncpg.Record | None] | None] = []
    async with pool.acquire() as con, con.transaction():
        overdue = await con.fetch(
            """SELECT id, incident_id FROM assignments WHERE acknowledged_at IS NULL AND ended_at IS NULL AND ack_deadline <= now()
               ORDER BY ack_deadline LIMIT 20"""
        )
        for candidate in overdue:
            # The incident first, as every change takes it; then whether the dispatch is still unanswered
            # (the crew, or another process's sweep, may have come first).
            incident = await incidents.get(con, str(candidate["incident_id"]), lock=True)
            assignment = await con.fetchrow(
                f"""SELECT {ASSIGNMENT_COLUMNS} FROM assignments
                    WHERE id = $1 AND acknowledged_at IS NULL AND ended_at IS NULL AND ack_deadline <= now() FOR UPDATE""",
                candidate["id"],
            )
            if assignment is None:
                continue
            facts, serving = await _withdraw(con, incident, assignment, ReleaseReason.NOT_RESPONDING, SYSTEM)
            reoffer = await _reoffer(con, fleet, settings, triage, incident, facts, serving, assignment)
            # The alert names the unit offered in its place, so the operator need not look it up.
            offered = reoffer[1] if reoffer is not None else None
            offered_id = offered["unit_id"] if offered is not None else None
            await _alert(
                con, "ack_timeout", assignment["incident_id"], unit_id=assignment["unit_id"],
                callsign=await con.fetchval("SELECT callsign FROM units WHERE id = $1", assignment["unit_id"]),
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
    return len(reoffers)


async def _reoffer(
    con: asyncpg.Connection, fleet: Fleet, settings: DispatchSettings, triage: TriageTable, incident: asyncpg.Record,
    facts: IncidentFacts, serving: tuple[UnitFacts, ...], withdrawn: asyncpg.Record,
) -> tuple[asyncpg.Record, asyncpg.Record | None] | None:
    """The incident and the unit's new assignment (None: no unit left); None if the incident is closed."""
    unanswered = await con.fetch(
        "SELECT unit_id FROM assignments WHERE incident_id = $1 AND end_reason = 'not_responding'", incident["id"],
    )
    plan = core.reoffer(facts, serving, withdrawn["unit_id"], (r["unit_id"] for r in unanswered))
    if plan is None:
        return None
    tiers = await incidents.recommend_for(fleet, settings, incident, exclude=tuple(sorted(plan.exclude)), catch_up=False)
    for candidate in tiers["transport"] if plan.carrier else tiers["recommendations"]:
        try:
            # A replacement, not a second unit for a role: the core's re-offer chose its list.
            offered, _, _ = await _send(con, incident, facts, serving, candidate["unit_id"], SYSTEM, settings, triage,
                                     auto=True, reoffer_of=withdrawn["id"], additional=True)
        except (UnitNotAvailable, MissingCapabilities):  # taken meanwhile, or changed since the index saw it
            continue
        return incident, offered
    await _alert(con, "no_unit_available", incident["id"])
    return incident, None


async def _alert(con: asyncpg.Connection, kind: str, incident_key: uuid.UUID, **detail: Any) -> None:
    await events.append(con, "alert", {"alert": kind, "incident_id": str(incident_key), **detail}, [OPERATORS])
