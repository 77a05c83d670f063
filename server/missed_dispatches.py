"""The dispatches a field phone missed while it was away: offered, not answered in time, withdrawn.

A phone that comes back resumes from the last event id it saw. Every ``dispatch.withdrawn`` for
its unit with reason ``not_responding`` after that point is a dispatch the crew never saw ring (or
saw too late); the phone is told which incident it was, when it was offered and withdrawn, and to
which unit the server offered it next (from the ``ack_timeout`` alert of the same sweep), so the
crew does not wonder, nor drive to it. The caller's name and number are not included: the
incident is no longer theirs. Only the replay window (``dispatch.unit_replay_h``) is looked at.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from server.assignments import ASSIGNMENT_COLUMNS

# A phone away for a whole shift hears of its latest few; the operators have the rest.
MOST = 5


async def missed(con: asyncpg.Connection, unit_id: str, after: int, window_h: float) -> list[dict[str, Any]]:
    """What ``unit_id``'s phone missed since event ``after``, oldest first."""
    rows = await con.fetch(
        """SELECT id, type, payload FROM events
           WHERE id > $1 AND at > now() - make_interval(secs => $3) AND type IN ('dispatch.withdrawn', 'alert')
             AND payload->>'unit_id' = $2
           ORDER BY id""",
        after, unit_id, window_h * 3600,
    )
    withdrawn = [r["payload"] for r in rows if r["type"] == "dispatch.withdrawn" and r["payload"].get("reason") == "not_responding"]
    alerts = [r["payload"] for r in rows if r["type"] == "alert" and r["payload"].get("alert") == "ack_timeout"]
    result = []
    for payload in withdrawn[-MOST:]:
        assignment = await con.fetchrow(f"SELECT {ASSIGNMENT_COLUMNS} FROM assignments WHERE id = $1", payload["assignment_id"])
        incident = await con.fetchrow(
            """SELECT i.id, i.priority, i.call_type, t.label_id, t.label_en, i.address, i.kelurahan, i.closed_at
               FROM incidents i LEFT JOIN triage_types t ON t.code = i.call_type WHERE i.id = $1::uuid""",
            payload["incident_id"],
        )
        if assignment is None or incident is None:
            continue
        alert = next((a for a in alerts if a.get("incident_id") == payload["incident_id"]), None)
        result.append({
            "assignment_id": assignment["id"],
            "offered_at": assignment["assigned_at"].isoformat(),
            "ack_deadline": assignment["ack_deadline"].isoformat(),
            "withdrawn_at": assignment["ended_at"].isoformat() if assignment["ended_at"] else None,
            "reason": "not_responding",
            "went_to": alert.get("offered_callsign") if alert else None,
            "incident": {
                "incident_id": str(incident["id"]), "priority": incident["priority"], "call_type": incident["call_type"],
                "call_type_label": incident["label_id"], "address": incident["address"], "kelurahan": incident["kelurahan"],
                "closed": incident["closed_at"] is not None,
            },
        })
    return result
