"""Closing an incident: its outcome, and no hospital left expecting its patient."""

from __future__ import annotations

import asyncpg

from dispatch import assignment as core
from dispatch.errors import InvalidInput
from dispatch.outcome import Outcome, parse_outcome
from server import audit, decisions, incidents, prearrival
from server.errors import InvalidField


async def close(
    pool: asyncpg.Pool, actor: audit.Actor, incident_id: str, outcome_value: object, duplicate_of: str | None = None
) -> asyncpg.Record:
    """Close with an outcome. Units must have cleared first; a duplicate names the incident it repeats. A
    hospital still expecting the patient is told the patient is not coming (`prearrival.incident_closed`)."""
    try:
        outcome = parse_outcome(outcome_value)
    except InvalidInput as exc:
        raise InvalidField(exc.message, field="outcome") from None
    if (outcome is Outcome.DUPLICATE) != (duplicate_of is not None):
        raise InvalidField("is required exactly when the outcome is duplicate", field="duplicate_of")
    async with pool.acquire() as con, con.transaction():
        row = await incidents.get(con, incident_id, lock=True)
        facts = decisions.incident_facts(row)
        at, serving = await decisions.serving(con, row["id"])
        decision = core.close(facts, serving, outcome)
        original = None
        if duplicate_of is not None:
            original = (await incidents.get(con, duplicate_of))["id"]
            if original == row["id"]:
                raise InvalidField("an incident cannot duplicate itself", field="duplicate_of")
        closed = await decisions.apply(con, row["id"], facts, decision, incidents.INCIDENT_COLUMNS,
                                       announced=({"incident_id": incident_id, "duplicate_of": duplicate_of, "by": actor.username},
                                                  [incidents.OPERATORS]),
                                       audited=audit.Entry(actor, "incident.close", f"incident:{incident_id}", {"outcome": outcome.value}),
                                       outcome=outcome.value, duplicate_of=original, closed_at=at)
        if row["destination"] is not None:
            await prearrival.incident_closed(con, actor, row["id"])
    return closed
