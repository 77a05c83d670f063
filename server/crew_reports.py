"""What a crew reports about its patient on the unit socket: vitals (with age and sex), the destination hospital
and the handover.

They travel in the phone's outbox with its status reports, so what was entered without signal is sent, in order,
once the link is back; a resent set of vitals counts once (its report id).
"""

from __future__ import annotations

from typing import Any

import asyncpg

from server import audit, destinations, field_vitals, prearrival
from server.errors import Conflict
from server.unit_messages import DestinationReport, HandoverReport, VitalsReport

Report = VitalsReport | DestinationReport | HandoverReport


async def handle(pool: asyncpg.Pool, actor: audit.Actor, unit_id: str, message: Report) -> dict[str, Any]:
    """Apply the report; what the phone's reply carries besides its ``ok``."""
    async with pool.acquire() as con, con.transaction():
        if isinstance(message, HandoverReport):
            incident = await field_vitals.incident_for(con, message.incident_id, unit_id, crew=True)
            notice_id = await con.fetchval(
                "SELECT id FROM prearrival_notices WHERE incident_id = $1 AND status IN ('sent', 'acknowledged', 'handed_over')"
                " ORDER BY id DESC LIMIT 1", incident["id"],
            )
            if notice_id is None:
                raise Conflict("no hospital expects this patient: choose the destination first", field="incident_id")
            done = await prearrival.handover(con, actor, notice_id, None, at=message.sent.reported_at)
            return {"handover": done["handed_over_at"].isoformat(), "incident_id": message.incident_id}
        if isinstance(message, DestinationReport):
            await field_vitals.incident_for(con, message.incident_id, unit_id, crew=True)
            await destinations.choose(con, actor, message.incident_id, message.facility)
            return {"destination": message.facility, "incident_id": message.incident_id}
        saved, duplicate = await field_vitals.record_vitals(
            con, actor, message.incident_id, message.vitals, message.report_id, unit_id, crew=True,
        )
        patient = message.patient
        if not duplicate and patient is not None and (patient.age is not None or patient.sex is not None):
            await field_vitals.set_patient(con, actor, message.incident_id, patient, unit_id, crew=True)
        return {"vitals": saved, "duplicate": duplicate, "incident_id": message.incident_id}
