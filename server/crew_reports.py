"""What a crew reports about its patient on the unit socket: vitals (with age and sex), the destination hospital
and the handover.

They travel in the phone's outbox with its status reports, so what was entered without signal is sent, in order,
once the link is back; a resent set of vitals or destination counts once (its report id). Only a unit still on the
incident may choose its destination or hand over; signs it measured while serving count when they arrive later.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from server import audit, destinations, field_vitals, incidents, prearrival
from server.errors import Conflict, NotFound
from server.unit_messages import DestinationReport, HandoverReport, VitalsReport

Report = VitalsReport | DestinationReport | HandoverReport


async def handle(pool: asyncpg.Pool, actor: audit.Actor, unit_id: str, message: Report) -> dict[str, Any]:
    """Apply the report; what the phone's reply carries besides its ``ok``."""
    async with pool.acquire() as con, con.transaction():
        if isinstance(message, HandoverReport):
            incident = await field_vitals.incident_for(con, message.incident_id, unit_id, crew=True, serving=True)
            notice_id = await con.fetchval(
                "SELECT id FROM prearrival_notices WHERE incident_id = $1 AND status IN ('sent', 'acknowledged', 'handed_over')"
                " ORDER BY id DESC LIMIT 1", incident["id"],
            )
            if notice_id is None:
                raise Conflict("no hospital expects this patient: choose the destination first", field="incident_id")
            done = await prearrival.handover(con, actor, notice_id, None, at=message.sent.reported_at)
            return {"handover": done["handed_over_at"].isoformat(), "incident_id": message.incident_id}
        if isinstance(message, DestinationReport):
            return await _destination(con, actor, unit_id, message)
        saved, duplicate = await field_vitals.record_vitals(
            con, actor, message.incident_id, message.vitals, message.report_id, unit_id, crew=True,
        )
        patient = message.patient
        if not duplicate and patient is not None and (patient.age is not None or patient.sex is not None):
            await field_vitals.set_patient(con, actor, message.incident_id, patient, unit_id, crew=True)
        return {"vitals": saved, "duplicate": duplicate, "incident_id": message.incident_id}


async def _destination(con: asyncpg.Connection, actor: audit.Actor, unit_id: str, message: DestinationReport) -> dict[str, Any]:
    """Choose the destination once per report id, like a set of vitals: a report resent after its reply was lost changes
    nothing (a choice made since stays) and is answered with the incident's destination now, flagged ``duplicate``."""
    incident = await incidents.get(con, message.incident_id, lock=True)  # reports on one incident wait for each other here
    taken = await con.fetchval(
        """INSERT INTO destination_reports (unit_id, report_id, incident_id) VALUES ($1, $2, $3)
           ON CONFLICT (unit_id, report_id) DO NOTHING RETURNING 1""",
        unit_id, message.report_id, incident["id"],
    )
    if taken is None:
        first = await con.fetchval("SELECT incident_id FROM destination_reports WHERE unit_id = $1 AND report_id = $2", unit_id, message.report_id)
        if first != incident["id"]:
            raise Conflict("this report id was used for another incident's destination", field="report_id")
        return {"destination": incident["destination"], "incident_id": message.incident_id, "duplicate": True}
    await field_vitals.require_serving(con, unit_id, incident["id"], NotFound(f"no incident {message.incident_id}"), "incident_id")
    await destinations.choose(con, actor, message.incident_id, message.facility)
    return {"destination": message.facility, "incident_id": message.incident_id, "duplicate": False}
