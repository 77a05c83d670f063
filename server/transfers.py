"""Inter-facility transfers: the PSC 119 incident an accepted referral becomes when the patient must be carried.

The transfer is a call like any other, made through `server.incidents` (recorded, assessed, recommended,
dispatched by the operator): picked up at the puskesmas, its priority from the referral's urgency, its
destination the hospital that accepted, set through `server.destinations.choose` so whatever follows a
destination (the hospital's pre-arrival notice) follows this one too. Its idempotency key is the
referral's, so accepting again, or two accepts at once, make one incident; a process that died between
the hospital's answer and the incident makes it on the next accept.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp import web

from server import audit, auto_dispatch, destinations, events, incidents
from server.consults import Stored
from server.keys import CONFIG, FLEET, METRICS, POOL, TRIAGE
from server.referrals import audience
from signaling.urgency import Urgency

CALL_TYPE = "interfacility_transfer"
PRIORITY = {Urgency.EMERGENCY: "merah", Urgency.URGENT: "kuning", Urgency.ROUTINE: "hijau"}
# A puskesmas with no number on record: the transfer is PSC 119's own call.
OWN_NUMBER = "119"


async def _intake(pool: asyncpg.Pool, referral: asyncpg.Record, stored: Stored) -> incidents.CallIntake:
    outcome = stored.consult.outcome
    assert outcome is not None and outcome.referral is not None  # only a consult that referred has a referral
    request = outcome.referral
    place = await pool.fetchrow("SELECT name, kelurahan, lat, lon, detail->>'phone' AS phone FROM facilities WHERE code = $1",
                                stored.facility)
    # Every field is the same on each attempt: a retry is then the same request to the idempotent intake.
    fields: dict[str, Any] = {
        "phone": place["phone"] or OWN_NUMBER, "caller_name": place["name"], "location": {"lat": place["lat"], "lon": place["lon"]},
        "address": place["name"], "kelurahan": place["kelurahan"] or "", "call_type": CALL_TYPE,
        "priority": PRIORITY[request.urgency],
        "notes": f"Rujukan {request.icd10} ke {referral['hospital_name']} · konsultasi {stored.id} · rujukan {referral['id']}",
    }
    return incidents.CallIntake(f"referral:{referral['id']}", fields, f"{request.icd10} {request.reason}"[: incidents.MAX_COMPLAINT])


async def ensure(app: web.Application, actor: audit.Actor, referral: asyncpg.Record, stored: Stored) -> str:
    """The id of the referral's transfer incident, made (recorded, linked both ways, destined, assessed) if not yet."""
    if referral["incident_id"] is not None:
        return str(referral["incident_id"])
    pool = app[POOL]
    row, created = await incidents.record_call(pool, actor, await _intake(pool, referral, stored), await app[TRIAGE].get())
    if created:
        app[METRICS].call_received(row["priority"])
    async with pool.acquire() as con, con.transaction():
        linked = await con.fetchval("SELECT incident_id FROM referrals WHERE id = $1 FOR UPDATE", referral["id"])
        if linked is None:
            await con.execute("UPDATE referrals SET incident_id = $2 WHERE id = $1", referral["id"], row["id"])
            await con.execute("UPDATE incidents SET referral_id = $2 WHERE id = $1", row["id"], referral["id"])
            updated = await destinations.choose(con, actor, str(row["id"]), referral["hospital"])
            await events.append(
                con, "referral.transfer",
                {"referral_id": str(referral["id"]), "consult_id": stored.id, "incident_id": str(row["id"]),
                 "hospital": referral["hospital"], "by": actor.username, "incident": incidents.incident_json(updated)},
                audience(stored, referral["hospital"]) | {incidents.OPERATORS},
            )
            await audit.record(con, actor, "referral.transfer", f"referral:{referral['id']}",
                               {"incident": str(row["id"]), "consult": stored.id})
    if created or row["assessed_at"] is None:  # a retry after a failed assessment assesses it now
        _, tiers, _ = await incidents.assess(pool, app[FLEET], app[CONFIG].dispatch, row, row["events_seen"])
        if created:
            await auto_dispatch.merah(app, row, tiers, await app[TRIAGE].get())
    return str(row["id"])
