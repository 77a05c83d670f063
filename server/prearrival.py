"""Pre-arrival notices: the destination hospital hears of the patient as soon as it is chosen.

Setting a destination (`server.destinations.choose`, the only way) withdraws the open notice to another
hospital and sends one to the new one, in the same transaction. A notice's events carry ids and states,
never the patient: the hospital's page reads the notice (`view`) when told, so what it shows (the latest
vitals, the units and their ETA) is computed when read. The ETA is from each carrying unit's last position;
the page reads again when a unit's status changes (``notice.unit``, sent to the hospital only) and at a
bounded rate while a unit is on its way (``dispatch.notice_eta_refresh_s``), never on every GPS fix.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import asyncpg

from dispatch.eta import Leg
from dispatch.geo import Point, distance_m
from dispatch.prearrival import OPEN, NoticeStatus, eta_to_hospital_s, move
from dispatch.units import UnitKind
from dispatch.vitals import RANGES
from server import audit, events, incidents
from server.errors import Conflict, NotFound
from server.fleet import Fleet

NOTICE_COLUMNS = """id, incident_id, facility_code, status, sent_at, sent_by, acknowledged_at, acknowledged_by, declined_at,
    decline_reason, withdrawn_at, arrived_at, handed_over_at, handed_over_by, closed_by"""
OPEN_STATES = [s.value for s in OPEN]
# How long a closed notice (handed over, declined, withdrawn) stays on the hospital's page.
RECENT_H = 12


def facility_tag(code: str) -> str:
    return f"facility:{code}"


async def open_notice(con: asyncpg.Connection, incident_key: uuid.UUID, *, lock: bool = False) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await con.fetchrow(
        f"SELECT {NOTICE_COLUMNS} FROM prearrival_notices WHERE incident_id = $1 AND status = ANY($2::text[])"
        + (" FOR UPDATE" if lock else ""), incident_key, OPEN_STATES,
    )
    return row


async def open_audience(con: asyncpg.Connection, incident_key: uuid.UUID) -> list[str]:
    """The hospital expecting the incident's patient, as an event audience (none when no notice is open)."""
    notice = await open_notice(con, incident_key)
    return [] if notice is None else [facility_tag(notice["facility_code"])]


async def _announce(
    con: asyncpg.Connection, type: str, notice: asyncpg.Record, actor: audit.Actor, *, said: dict[str, str] | None = None, **detail: Any,
) -> None:
    """A notice's change, to its hospital, the operators and the units on the incident; on the incident's timeline.
    ``said``: free text (a decline's reason) for the event alone: the audit log, which retention cannot edit, keeps
    who did what and when, never what may describe the patient."""
    hospital = await con.fetchval("SELECT name FROM facilities WHERE code = $1", notice["facility_code"])
    await events.append(
        con, type,
        {"incident_id": str(notice["incident_id"]), "notice_id": notice["id"], "facility": notice["facility_code"],
         "hospital_name": hospital, "notice_status": notice["status"], "by": actor.username, **detail, **(said or {})},
        [facility_tag(notice["facility_code"]), incidents.OPERATORS, *await incidents.active_unit_audience(con, notice["incident_id"])],
    )
    await audit.record(con, actor, type, f"notice:{notice['id']}", {"incident_id": str(notice["incident_id"]), **detail})


async def _set(con: asyncpg.Connection, notice: asyncpg.Record, target: NoticeStatus, sets: str, *values: Any) -> asyncpg.Record:
    move(NoticeStatus(notice["status"]), target)
    row: asyncpg.Record = await con.fetchrow(
        f"UPDATE prearrival_notices SET status = $2, {sets} WHERE id = $1 RETURNING {NOTICE_COLUMNS}", notice["id"], target.value, *values,
    )
    return row


async def destination_set(con: asyncpg.Connection, actor: audit.Actor, incident_key: uuid.UUID, facility: str) -> None:
    """After the destination changed (in the caller's transaction, the incident locked): the old hospital's notice
    is withdrawn and the new one is sent; choosing the hospital already notified again changes nothing."""
    current = await open_notice(con, incident_key, lock=True)
    if current is not None:
        if current["facility_code"] == facility:
            return
        await _withdraw(con, current, actor)
    sent = await con.fetchrow(
        f"INSERT INTO prearrival_notices (incident_id, facility_code, sent_by) VALUES ($1, $2, $3) RETURNING {NOTICE_COLUMNS}",
        incident_key, facility, actor.username,
    )
    await _announce(con, "notice.sent", sent, actor)


async def incident_closed(con: asyncpg.Connection, actor: audit.Actor, incident_key: uuid.UUID) -> None:
    """The incident closed (in the caller's transaction, the incident locked): a notice still open is withdrawn,
    so no hospital keeps waiting for a patient who is not coming."""
    current = await open_notice(con, incident_key, lock=True)
    if current is not None:
        await _withdraw(con, current, actor, reason="incident_closed")


async def _withdraw(con: asyncpg.Connection, notice: asyncpg.Record, actor: audit.Actor, **detail: Any) -> None:
    withdrawn = await _set(con, notice, NoticeStatus.WITHDRAWN, "withdrawn_at = now(), closed_by = $3", actor.username)
    await _announce(con, "notice.withdrawn", withdrawn, actor, **detail)


async def _lock_for_hospital(con: asyncpg.Connection, notice_id: int, facility: str | None) -> asyncpg.Record:
    """The notice, locked after its incident (the order every incident change takes); a notice addressed to another
    hospital is as unknown as one that does not exist."""
    found = await con.fetchrow("SELECT incident_id, facility_code FROM prearrival_notices WHERE id = $1", notice_id)
    if found is None or (facility is not None and found["facility_code"] != facility):
        raise NotFound(f"no notice {notice_id}", field="id")
    await con.execute("SELECT 1 FROM incidents WHERE id = $1 FOR UPDATE", found["incident_id"])
    row: asyncpg.Record = await con.fetchrow(f"SELECT {NOTICE_COLUMNS} FROM prearrival_notices WHERE id = $1 FOR UPDATE", notice_id)
    return row


async def acknowledge(con: asyncpg.Connection, actor: audit.Actor, notice_id: int, facility: str) -> asyncpg.Record:
    notice = await _lock_for_hospital(con, notice_id, facility)
    if notice["status"] == NoticeStatus.ACKNOWLEDGED.value:
        return notice  # a retried tap
    done = await _set(con, notice, NoticeStatus.ACKNOWLEDGED, "acknowledged_at = now(), acknowledged_by = $3", actor.username)
    await _announce(con, "notice.acknowledged", done, actor)
    return done


async def decline(con: asyncpg.Connection, actor: audit.Actor, notice_id: int, facility: str, reason: str) -> asyncpg.Record:
    """The hospital cannot take the patient: the operators are alerted at once to choose another."""
    notice = await _lock_for_hospital(con, notice_id, facility)
    done = await _set(con, notice, NoticeStatus.DECLINED, "declined_at = now(), decline_reason = $3, closed_by = $4", reason, actor.username)
    await _announce(con, "notice.declined", done, actor, said={"reason": reason})
    hospital = await con.fetchval("SELECT name FROM facilities WHERE code = $1", facility)
    await events.append(
        con, "alert",
        {"alert": "notice_declined", "incident_id": str(done["incident_id"]), "notice_id": done["id"], "facility": facility,
         "hospital_name": hospital, "reason": reason},
        [incidents.OPERATORS],
    )
    return done


async def handover(
    con: asyncpg.Connection, actor: audit.Actor, notice_id: int, facility: str | None, *, at: dt.datetime | None = None,
) -> asyncpg.Record:
    """The patient is handed over: the offload time runs from the first unit's arrival (``at_hospital``) to now, or to
    ``at`` (a crew's press kept on its phone), never before the arrival nor after now."""
    notice = await _lock_for_hospital(con, notice_id, facility)
    if notice["status"] == NoticeStatus.HANDED_OVER.value:
        return notice
    arrived = await con.fetchval("SELECT min(at_hospital_at) FROM assignments WHERE incident_id = $1", notice["incident_id"])
    if arrived is None:
        raise Conflict("no unit has reported its arrival at the hospital yet", field="status")
    done = await _set(con, notice, NoticeStatus.HANDED_OVER,
                      "arrived_at = $3, handed_over_at = greatest(least(coalesce($5, now()), now()), $3), handed_over_by = $4",
                      arrived, actor.username, at)
    await _announce(con, "notice.handover", done, actor, offload_s=(done["handed_over_at"] - arrived).total_seconds())
    return done


async def follow_unit(con: asyncpg.Connection, incident_key: uuid.UUID, unit_id: str, status: str) -> None:
    """A unit on the incident changed status: the expecting hospital re-reads its notice (the ETA and the units)."""
    notice = await open_notice(con, incident_key)
    if notice is not None:
        await events.append(con, "notice.unit", {"notice_id": notice["id"], "unit_id": unit_id, "status": status},
                            [facility_tag(notice["facility_code"])])


async def notice_of(con: asyncpg.Connection | asyncpg.Pool, notice_id: int) -> asyncpg.Record:
    row: asyncpg.Record | None = await con.fetchrow(f"SELECT {NOTICE_COLUMNS} FROM prearrival_notices WHERE id = $1", notice_id)
    if row is None:
        raise NotFound(f"no notice {notice_id}", field="id")
    return row


async def views(
    con: asyncpg.Connection | asyncpg.Pool, fleet: Fleet, *, facility: str | None = None, incident: uuid.UUID | None = None,
    notice_id: int | None = None,
) -> list[dict[str, Any]]:
    """Notices as the hospital reads them: open ones and those closed in the last hours, newest first; each with the
    incident's priority, call type, complaint, the patient, the latest vitals, and the units with their ETA now."""
    rows = await con.fetch(
        f"""SELECT n.id, n.incident_id, n.facility_code, n.status, n.sent_at, n.acknowledged_at, n.acknowledged_by, n.declined_at,
                   n.decline_reason, n.withdrawn_at, n.arrived_at, n.handed_over_at, n.handed_over_by,
                   f.name AS hospital_name, f.lat AS hospital_lat, f.lon AS hospital_lon,
                   i.priority, i.call_type, i.complaint, i.destination, p.age, p.sex,
                   (SELECT to_jsonb(v) FROM (SELECT id, measured_at, unit_id, {', '.join(RANGES)} FROM incident_vitals
                     WHERE incident_id = n.incident_id ORDER BY measured_at DESC, id DESC LIMIT 1) v) AS vitals
            FROM prearrival_notices n JOIN facilities f ON f.code = n.facility_code JOIN incidents i ON i.id = n.incident_id
            LEFT JOIN incident_patients p ON p.incident_id = n.incident_id
            WHERE ($1::text IS NULL OR n.facility_code = $1) AND ($2::uuid IS NULL OR n.incident_id = $2) AND ($3::bigint IS NULL OR n.id = $3)
              AND (n.status = ANY($4::text[])
                   OR coalesce(n.handed_over_at, n.declined_at, n.withdrawn_at) > now() - make_interval(hours => $5))
            ORDER BY n.sent_at DESC, n.id DESC LIMIT 200""",
        facility, incident, notice_id, OPEN_STATES, RECENT_H,
    )
    units = await con.fetch(
        """SELECT a.incident_id, u.id, u.callsign, u.kind, u.status, u.position_lat, u.position_lon, u.position_at, u.base_lat, u.base_lon
           FROM assignments a JOIN units u ON u.id = a.unit_id
           WHERE a.incident_id = ANY($1::uuid[]) AND a.ended_at IS NULL ORDER BY u.callsign""",
        list({r["incident_id"] for r in rows}),
    )
    on_notice = [(r, [u for u in units if u["incident_id"] == r["incident_id"]]) for r in rows]
    # Only a unit carrying the patient has a drive to show: by road when a road service is configured (as the operator
    # ranked the units by), else, or where it has no route, by line.
    driving = [(r, u) for r, on in on_notice for u in on if u["status"] == "transporting"]
    legs = [_leg(r, u) for r, u in driving]
    road = await fleet.road.legs_s(legs) if fleet.road is not None else [None] * len(legs)
    drives = {
        (r["id"], u["id"]): fleet.index.eta.eta_for_distance(distance_m(leg.origin, leg.dest), leg.kind) if s is None else s
        for (r, u), leg, s in zip(driving, legs, road, strict=True)
    }
    return [_view(r, on, drives) for r, on in on_notice]


def _leg(row: asyncpg.Record, unit: asyncpg.Record) -> Leg:
    """From the unit's last position (its base before any) to the notice's hospital."""
    at = Point(unit["position_lat"], unit["position_lon"]) if unit["position_lat"] is not None else Point(unit["base_lat"], unit["base_lon"])
    return Leg(at, UnitKind(unit["kind"]), Point(row["hospital_lat"], row["hospital_lon"]))


def _view(row: asyncpg.Record, units: list[asyncpg.Record], drives: dict[tuple[int, str], float]) -> dict[str, Any]:
    """``drives``: the seconds to the hospital of each unit carrying a patient, by (notice, unit)."""
    carrying = []
    for u in units:
        drive = drives.get((row["id"], u["id"]))
        carrying.append({"unit_id": u["id"], "callsign": u["callsign"], "kind": u["kind"], "status": u["status"],
                         "position_at": u["position_at"], "eta_s": eta_to_hospital_s(u["status"], drive)})
    etas = [c["eta_s"] for c in carrying if c["eta_s"] is not None]
    # A hospital that declined the patient, or that another was chosen over, learns nothing more of them.
    gone = row["status"] in (NoticeStatus.DECLINED.value, NoticeStatus.WITHDRAWN.value)
    return {
        "id": row["id"], "incident_id": str(row["incident_id"]), "facility": row["facility_code"], "hospital_name": row["hospital_name"],
        "status": row["status"], "sent_at": row["sent_at"], "acknowledged_at": row["acknowledged_at"],
        "acknowledged_by": row["acknowledged_by"], "declined_at": row["declined_at"], "decline_reason": row["decline_reason"],
        "withdrawn_at": row["withdrawn_at"], "arrived_at": row["arrived_at"], "handed_over_at": row["handed_over_at"],
        "handed_over_by": row["handed_over_by"], "priority": row["priority"], "call_type": row["call_type"],
        "complaint": None if gone else row["complaint"], "patient": None if gone else {"age": row["age"], "sex": row["sex"]},
        "vitals": None if gone else row["vitals"], "units": [] if gone else carrying, "eta_s": None if gone else min(etas, default=None),
    }
