"""The rows the assignment core (`dispatch.assignment`) decides on, and its decisions written back.

Callers lock the rows first (``FOR UPDATE``) and call these inside the transaction that also appends
the decision's events. The incident's UPDATE is conditional on the state and version the core saw: the
rows are locked, so it always matches, and were it not so the change would be refused, not misapplied.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import asyncpg

from dispatch.assignment import MILESTONES, Decision, IncidentFacts, UnitFacts
from dispatch.doctrine import needs_from_capabilities
from dispatch.incident import IncidentState
from dispatch.status import UnitStatus
from server import audit, events
from server.errors import Stale
from server.statements import Params


def incident_facts(row: asyncpg.Record) -> IncidentFacts:
    milestones = {name: row[name] for name in MILESTONES.values() if row[name] is not None}
    return IncidentFacts(IncidentState(row["status"]), row["assignment_version"], needs_from_capabilities(row["needs"]), milestones)


def unit_facts(row: Mapping[str, Any]) -> UnitFacts:
    return UnitFacts(row["id"], UnitStatus(row["status"]), frozenset(row["capabilities"]))


def serving_sql(incident: str) -> str:
    """An expression for the units on ``incident`` (an SQL expression for its key) now, in the order they were
    sent, as JSON: a column of a statement that has more to read (`serving_facts` turns it into facts). Read it
    only once the incident is locked, so no unit sent or released before the lock is missed."""
    return f"""(SELECT coalesce(json_agg(json_build_object('id', u.id, 'status', u.status, 'capabilities', u.capabilities)
                                       ORDER BY a.id), '[]')
               FROM assignments a JOIN units u ON u.id = a.unit_id WHERE a.incident_id = {incident} AND a.ended_at IS NULL)"""


def serving_facts(found: list[dict[str, Any]]) -> tuple[UnitFacts, ...]:
    return tuple(unit_facts(unit) for unit in found)


async def serving(con: asyncpg.Connection, incident_key: uuid.UUID) -> tuple[dt.datetime, tuple[UnitFacts, ...]]:
    """The transaction's time (the time every row of the change records), and the units on the (locked) incident
    now, in the order they were sent."""
    row = await con.fetchrow(f"SELECT now() AS at, {serving_sql('$1')} AS units", incident_key)
    return row["at"], serving_facts(row["units"])


@dataclasses.dataclass(frozen=True, slots=True)
class Steps:
    """The ``WITH`` items of a change and the parameters they took: written by `write`, or in the round trip of
    `apply`'s statement (which adds its own to ``params``)."""

    sql: tuple[str, ...]
    params: Params

    async def write(self, con: asyncpg.Connection) -> None:
        await con.execute(f"WITH {', '.join(self.sql)} SELECT", *self.params.values)


async def apply(
    con: asyncpg.Connection, incident_key: uuid.UUID, before: IncidentFacts, decision: Decision,
    returning: str = "id", *, announced: tuple[dict[str, Any], Iterable[str]] | None = None, audited: audit.Entry | None = None,
    first: Steps | None = None, **columns: Any,
) -> asyncpg.Record:
    """Write the incident's new state, version and milestones (and ``columns``); the row, as ``returning``.
    In the same statement: ``first``, steps of the change that come before; ``announced``, the decision's events
    (as `announce` appends them, with this ``base`` and audience), each only once the incident's row is written;
    ``audited``, the change's audit entry."""
    assert decision.state is not None and decision.version is not None  # a decision about an incident
    ahead = first or Steps((), Params())
    params = ahead.params
    sets: dict[str, Any] = {"status": decision.state.value, "assignment_version": decision.version, **decision.milestones, **columns}
    assignments = ", ".join(f"{name} = {params.add(value)}" for name, value in sets.items())
    steps = [*ahead.sql, f"""applied AS (UPDATE incidents SET {assignments}
                                         WHERE id = {params.add(incident_key)} AND status = {params.add(before.state.value)}
                                           AND assignment_version = {params.add(before.version)} RETURNING {returning})"""]
    source = "applied"
    if announced is not None:
        # Each event's step reads the one before it: they are appended in order, after the row.
        for n, (type, payload) in enumerate(decision_events(decision, announced[0])):
            steps.append(f"event{n} AS (SELECT {events.appended(con, type, payload, announced[1], params)} FROM {source})")
            source = f"event{n}"
    if audited is not None:
        steps.append(audited.cte(params))
    joined = "" if source == "applied" else f", {source}"
    row = await con.fetchrow(f"WITH {', '.join(steps)} SELECT applied.* FROM applied{joined}", *params.values)
    if row is None:
        raise Stale("the incident changed under this request; look again", field="assignment_version")
    return row


def decision_events(decision: Decision, base: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The decision's events as appended: type, and the server's ``base`` with the core's data over it."""
    return [(event.type, base | dict(event.data)) for event in decision.events]


async def announce(con: asyncpg.Connection, decision: Decision, base: dict[str, Any], audience: Iterable[str]) -> None:
    """Append the decision's events: the server's ``base`` (ids, names, who) with the core's data over it."""
    for type, payload in decision_events(decision, base):
        await events.append(con, type, payload, audience)
