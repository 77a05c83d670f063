"""The crew's vital signs and the patient's age and sex on an incident: recorded once however often they arrive.

A set of vitals carries the client's key (the phone's report id, or an operator's idempotency key): a set the
phone kept without signal and sends again is recorded once, at the time it was measured. Who may add them: an
operator, or the crew of a unit that serves the incident or served it within the hours a phone may keep a
report (`dispatch.vitals.MAX_AGE`), so signs taken on the way in and sent after handover still count. Choosing the
destination or handing the patient over acts on the incident now: only a unit still on it may (`require_serving`).
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from dispatch.vitals import MAX_AGE, RANGES, Patient, Vitals
from server import audit, events, incidents, prearrival
from server.errors import ApiError, Conflict, NotFound

VITALS_COLUMNS = "id, incident_id, measured_at, recorded_at, unit_id, " + ", ".join(RANGES)


def vitals_json(row: asyncpg.Record) -> dict[str, Any]:
    return {"id": row["id"], "measured_at": row["measured_at"].isoformat(), "unit_id": row["unit_id"],
            **{name: row[name] for name in RANGES}}


async def _served(con: asyncpg.Connection | asyncpg.Pool, unit_id: str | None, incident_key: uuid.UUID) -> tuple[bool, bool]:
    """Whether the unit serves the incident now, and whether it did until recently (or does)."""
    if unit_id is None:
        return False, False
    row = await con.fetchrow(
        """SELECT coalesce(bool_or(ended_at IS NULL), false) AS now,
                  coalesce(bool_or(ended_at IS NULL OR ended_at > now() - make_interval(secs => $3)), false) AS lately
           FROM assignments WHERE unit_id = $1 AND incident_id = $2""",
        unit_id, incident_key, MAX_AGE.total_seconds(),
    )
    return row["now"], row["lately"]


async def crew_serves(con: asyncpg.Connection | asyncpg.Pool, unit_id: str | None, incident_key: uuid.UUID) -> bool:
    """Whether the unit serves the incident now, or did until recently."""
    return (await _served(con, unit_id, incident_key))[1]


async def require_serving(con: asyncpg.Connection, unit_id: str | None, incident_key: uuid.UUID, missing: ApiError, field: str) -> None:
    """Refuse a unit that is not on the incident now: ``missing`` if it never was (or long ago), a 409 naming ``field``
    if it was withdrawn or its dispatch ended lately (a report it kept may still be on its way)."""
    now, lately = await _served(con, unit_id, incident_key)
    if not lately:
        raise missing
    if not now:
        raise Conflict("this unit is no longer on the incident: only a unit serving it may choose the destination or hand over",
                       field=field)


async def incident_for(
    con: asyncpg.Connection, incident_id: str, unit_id: str | None, *, crew: bool, serving: bool = False,
) -> asyncpg.Record:
    """The incident, locked; a crew that does not serve it gets the same 404 as for an incident that does not exist.
    With ``serving``, a crew whose unit left it lately gets a 409 (`require_serving`)."""
    row = await incidents.get(con, incident_id, lock=True)
    missing = NotFound(f"no incident {incident_id}")
    if crew and serving:
        await require_serving(con, unit_id, row["id"], missing, "incident_id")
    elif crew and not await crew_serves(con, unit_id, row["id"]):
        raise missing
    return row


async def record_vitals(
    con: asyncpg.Connection, actor: audit.Actor, incident_id: str, vitals: Vitals, key: str, unit_id: str | None, *, crew: bool,
) -> tuple[dict[str, Any], bool]:
    """Record a set of vitals in the caller's transaction; the set, and whether it was there already (same key)."""
    row = await incident_for(con, incident_id, unit_id, crew=crew)
    signs = vitals.signs()
    # Sets for one incident wait for each other on its lock; a key raced for by two incidents' sets goes to one.
    saved = await con.fetchrow(
        f"""INSERT INTO incident_vitals (incident_id, client_key, measured_at, recorded_by, unit_id, {', '.join(RANGES)})
            VALUES ($1, $2, $3, $4, $5, {', '.join(f'${n}' for n in range(6, 6 + len(RANGES)))})
            ON CONFLICT (client_key) DO NOTHING RETURNING {VITALS_COLUMNS}""",
        row["id"], key, vitals.measured_at, actor.user_id, unit_id, *(signs.get(name) for name in RANGES),
    )
    if saved is None:
        existing = await con.fetchrow(f"SELECT {VITALS_COLUMNS} FROM incident_vitals WHERE client_key = $1", key)
        if existing["incident_id"] != row["id"]:
            raise Conflict("this key was used for another incident's vitals", field="idempotency_key")
        return vitals_json(existing), True
    result = vitals_json(saved)
    await events.append(
        con, "incident.vitals", {"incident_id": str(row["id"]), "vitals": result, "unit_id": unit_id, "by": actor.username},
        await _audience(con, row["id"]),
    )
    await audit.record(con, actor, "incident.vitals", f"incident:{row['id']}", {"vitals_id": saved["id"], "unit_id": unit_id})
    return result, False


async def set_patient(
    con: asyncpg.Connection, actor: audit.Actor, incident_id: str, patient: Patient, unit_id: str | None, *, crew: bool,
) -> dict[str, Any]:
    """Set what is given of the patient's age and sex (a field left out keeps its value)."""
    row = await incident_for(con, incident_id, unit_id, crew=crew)
    saved = await con.fetchrow(
        """INSERT INTO incident_patients (incident_id, age, sex) VALUES ($1, $2, $3)
           ON CONFLICT (incident_id) DO UPDATE SET age = coalesce($2, incident_patients.age),
               sex = coalesce($3, incident_patients.sex), updated_at = now()
           RETURNING age, sex""",
        row["id"], patient.age, patient.sex.value if patient.sex else None,
    )
    result = {"age": saved["age"], "sex": saved["sex"]}
    await events.append(con, "incident.patient", {"incident_id": str(row["id"]), "patient": result, "by": actor.username},
                        await _audience(con, row["id"]))
    await audit.record(con, actor, "incident.patient", f"incident:{row['id']}", {"changed": sorted(k for k, v in result.items() if v is not None)})
    return result


async def _audience(con: asyncpg.Connection, incident_key: uuid.UUID) -> list[str]:
    """Operators, the units on the incident, and the hospital expecting the patient, if any."""
    return [incidents.OPERATORS, *await incidents.active_unit_audience(con, incident_key), *await prearrival.open_audience(con, incident_key)]
