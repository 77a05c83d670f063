"""Calls and incidents: recording a call, assessing it, updating and closing it.

An operator's call is stored with its assessment in one statement (`server.call_intake`). Here a
call is recorded unassessed, in its own transaction with its ``call.received`` event (when its
assessment failed, and a referral's transfer); the assessment (duplicate and prank warnings, the
recommendation) follows and is stored and announced as ``call.assessed``, with ``assessed_at`` set
in the same transaction, so a call whose process died in between is found and assessed at the next
start-up.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Mapping
from typing import Any

import asyncpg

from dispatch.call import Call, call_from_dict, resolve_priority
from dispatch.doctrine import call_needs, needs_from_capabilities
from dispatch.eta import ReRanker
from dispatch.geo import Point
from dispatch.priority import Priority
from dispatch.recommend import rerank_by_road_eta
from dispatch.triage import CallType, TriageTable, default_triage_table
from server import areas, audit, call_warnings, events, phone_presence
from server.config import DispatchSettings
from server.errors import Conflict, InvalidField, NotFound
from server.fleet import Fleet
from server.statements import Params

OPERATORS = "role:operator"
INCIDENT_COLUMNS = """id, idempotency_key, created_by, received_at, caller_phone, caller_name, lat, lon, address,
    kelurahan, kecamatan, call_type, complaint, priority, notes, status, outcome, duplicate_of, destination,
    warnings, first_dispatched_at, first_acknowledged_at, first_on_scene_at, closed_at, assignment_version, needs,
    referral_id"""
# The newest event committed before the statement's snapshot: what a recommendation made for it must have seen.
EVENTS_SEEN = "(SELECT coalesce(max(id), 0) FROM events) AS events_seen"
MAX_COMPLAINT = 500


def incident_json(row: asyncpg.Record) -> dict[str, Any]:
    data = dict(row)
    data["id"] = str(row["id"])
    data["duplicate_of"] = str(row["duplicate_of"]) if row["duplicate_of"] else None
    data["location"] = {"lat": row["lat"], "lon": row["lon"]} if row["lat"] is not None else None
    del data["lat"], data["lon"], data["idempotency_key"]
    return data


def incident_json_sql(row: str) -> str:
    """`incident_json` in SQL, of ``row`` (a ``WITH`` item returning `INCIDENT_COLUMNS`): for an event built in the statement."""
    return f"""(to_jsonb({row}) - '{{lat,lon,idempotency_key}}'::text[]
        || jsonb_build_object('location', CASE WHEN {row}.lat IS NULL THEN NULL ELSE jsonb_build_object('lat', {row}.lat, 'lon', {row}.lon) END))"""


def crew_view(row: asyncpg.Record, call_type: CallType | None) -> dict[str, Any]:
    """What a field team needs to know about its incident."""
    return {
        "incident_id": str(row["id"]),
        "priority": row["priority"],
        "call_type": row["call_type"],
        "call_type_label": call_type.label_id if call_type else None,
        "complaint": row["complaint"],
        "location": {"lat": row["lat"], "lon": row["lon"]} if row["lat"] is not None else None,
        "address": row["address"],
        "kelurahan": row["kelurahan"],
        "caller_name": row["caller_name"],
        "caller_phone": row["caller_phone"],
        "notes": row["notes"],
        "destination": row["destination"],
    }


async def load_triage(con: asyncpg.Connection | asyncpg.Pool) -> TriageTable:
    rows = await con.fetch("SELECT code, label_id, label_en, priority, capabilities, service FROM triage_types WHERE active")
    if not rows:
        return default_triage_table()
    return TriageTable(tuple(
        CallType(r["code"], r["label_id"], r["label_en"], Priority(r["priority"]), frozenset(r["capabilities"]), r["service"])
        for r in rows
    ))


async def seed_triage(con: asyncpg.Connection) -> None:
    """Fill the triage table with the default call types the first time only; admins edit it after."""
    async with con.transaction():
        if await con.fetchval("SELECT 1 FROM meta WHERE key = 'triage_seeded' FOR UPDATE"):
            return
        await con.executemany(
            """INSERT INTO triage_types (code, label_id, label_en, priority, capabilities, service) VALUES ($1, $2, $3, $4, $5, $6)
               ON CONFLICT (code) DO NOTHING""",
            [(t.code, t.label_id, t.label_en, t.priority.value, sorted(t.capabilities), t.service) for t in default_triage_table()],
        )
        await con.execute("INSERT INTO meta (key, value) VALUES ('triage_seeded', 'true') ON CONFLICT DO NOTHING")


@dataclasses.dataclass(frozen=True, slots=True)
class CallIntake:
    idempotency_key: str
    fields: dict[str, Any]
    complaint: str

    @classmethod
    def parse(cls, body: dict[str, Any]) -> CallIntake:
        fields = dict(body)
        key = fields.pop("idempotency_key", None)
        if not isinstance(key, str) or not 8 <= len(key) <= 100:
            raise InvalidField("is required: a client-chosen string of 8-100 characters, the same on every retry", field="idempotency_key")
        complaint = fields.pop("complaint", "")
        if not isinstance(complaint, str) or len(complaint) > MAX_COMPLAINT:
            raise InvalidField(f"must be text of at most {MAX_COMPLAINT} characters", field="complaint")
        return cls(key, fields, complaint.strip())

    @property
    def digest(self) -> str:
        canonical = json.dumps({"fields": self.fields, "complaint": self.complaint}, sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()


async def _area(con: asyncpg.Connection, kelurahan: str, location: Point | None) -> tuple[str | None, str | None]:
    """(kelurahan code, kecamatan code): the named kelurahan, else the nearest centroid to the location."""
    if not kelurahan and location is None:
        return None, None
    params = Params()
    found = await con.fetchrow(areas.sql(params, kelurahan, location), *params.values)
    return areas.area(kelurahan, location, tuple(found) if found else None)


# What intake writes of a new incident (`intake_values`); every other column starts at its default.
INTAKE_COLUMNS = """id, idempotency_key, request_digest, created_by, caller_phone, caller_name, lat, lon, address, kelurahan,
    kecamatan, call_type, complaint, priority, notes, needs"""


def intake_values(
    incident_id: uuid.UUID, actor: audit.Actor, intake: CallIntake, call: Call, triage: TriageTable, area: tuple[str | None, str | None],
) -> tuple[Any, ...]:
    """`INTAKE_COLUMNS`' values, in order."""
    return (
        incident_id, intake.idempotency_key, intake.digest, actor.user_id, call.phone, call.caller_name,
        call.location.lat if call.location else None, call.location.lon if call.location else None,
        call.address, *area, call.call_type, intake.complaint, resolve_priority(call, triage).value, call.notes,
        call_needs(triage, call.call_type).capabilities(),
    )


async def existing(con: asyncpg.Connection | asyncpg.Pool, intake: CallIntake) -> asyncpg.Record:
    """The call stored under the intake's idempotency key, with ``assessed_at`` and ``events_seen`` (`record_call`):
    a retry of the same call; another call under that key is refused."""
    row = await con.fetchrow(
        f"SELECT {INCIDENT_COLUMNS}, request_digest, assessed_at, {EVENTS_SEEN} FROM incidents WHERE idempotency_key = $1",
        intake.idempotency_key,
    )
    if row["request_digest"] != intake.digest:
        raise Conflict("this idempotency key was used for a different call", field="idempotency_key")
    return row


def parse_call(intake: CallIntake, triage: TriageTable) -> Call:
    return call_from_dict(intake.fields, received_at=dt.datetime.now(dt.UTC), table=triage)


async def record_call(
    pool: asyncpg.Pool, actor: audit.Actor, intake: CallIntake, triage: TriageTable
) -> tuple[asyncpg.Record, bool]:
    """Commit the call (idempotently), unassessed; return its row and whether this request created it.
    The row also has ``events_seen``, the newest event committed before the call (`recommend_for`), and
    for an existing call ``assessed_at``."""
    call = parse_call(intake, triage)
    async with pool.acquire() as con, con.transaction():
        incident_id = uuid.uuid4()
        row = await con.fetchrow(
            f"""INSERT INTO incidents ({INTAKE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
                ON CONFLICT (idempotency_key) DO NOTHING
                RETURNING {INCIDENT_COLUMNS}, {EVENTS_SEEN}""",
            *intake_values(incident_id, actor, intake, call, triage, await _area(con, call.kelurahan, call.location)),
        )
        if row is None:
            return await existing(con, intake), False
        incident = incident_json(row)
        del incident["events_seen"]
        await events.append(
            con, "call.received", {"incident_id": str(incident_id), "incident": incident, "by": actor.username}, [OPERATORS],
            audit.Entry(actor, "call.create", f"incident:{incident_id}"),
        )
    return row, True


async def assess(
    pool: asyncpg.Pool, fleet: Fleet, settings: DispatchSettings, row: asyncpg.Record, events_seen: int | None = None,
) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]], asyncpg.Record | None]:
    """Duplicate and prank warnings (stored) and the current recommendation, both tiers (not stored); and the
    incident as this assessment stored it (None: another had assessed it first). ``events_seen``: as for `recommend_for`."""
    now = dt.datetime.now(dt.UTC)
    rules = call_warnings.rules_of(settings)
    location = Point(row["lat"], row["lon"]) if row["lat"] is not None else None
    params = Params()
    at = f"{params.add(row['received_at'])}::timestamptz"
    rows = await pool.fetch(call_warnings.sql(params, at, row["id"], row["caller_phone"], location, rules), *params.values)
    warnings = call_warnings.warnings(rows, row["caller_phone"], location, row["received_at"], now, rules)
    recommendations = await recommend_for(fleet, settings, row, events_seen=events_seen)
    async with pool.acquire() as con, con.transaction():
        # Only the first assessment is stored and announced: a retried request and the start-up
        # pass (`server.unassessed`) may both assess a call that a killed process left unassessed.
        # The store and its event are one statement; the event is appended only with the stored row.
        params = Params()
        stored = f"""UPDATE incidents SET warnings = {params.add(warnings)}, assessed_at = now()
                     WHERE id = {params.add(row["id"])} AND assessed_at IS NULL RETURNING {INCIDENT_COLUMNS}"""
        event = events.appended(con, "call.assessed", {"incident_id": str(row["id"]), "warnings": warnings, **recommendations},
                                [OPERATORS], params)
        first = await con.fetchrow(
            f"WITH first AS ({stored}), announced AS (SELECT {event} FROM first) SELECT first.* FROM first, announced", *params.values,
        )
    return warnings, recommendations, first


async def recommend_for(
    fleet: Fleet, settings: DispatchSettings, row: asyncpg.Record, exclude: tuple[str, ...] = (),
    *, catch_up: bool = True, events_seen: int | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """The incident's two tiers, ``{"recommendations": first responders, "transport": carriers}``,
    from an index that has seen every change committed so far, re-ranked by road time when a road
    ETA provider is configured. The needs are the incident's own, stored at intake.

    Call it holding no pool connection: catching up reads from the pool. Inside a transaction
    pass ``catch_up=False`` (the index cannot see that transaction's own changes anyway, and
    no locks are held while the road times are fetched: the straight-line order is used).
    ``events_seen``: catch up to that event only, the newest one committed before the caller's request (read in
    one of its statements), instead of to the newest one now: no round trip, and no wait for the request's own.
    """
    if row["lat"] is None:
        return {"recommendations": [], "transport": []}
    if catch_up and events_seen is not None:
        await fleet.caught_up(events_seen)
    elif catch_up:
        await fleet.current()
    result = await ranked(fleet, settings, row, exclude, road=fleet.road if catch_up else None)
    if not catch_up:
        return result
    # Whether each unit's phone is connected: an offline phone is reached by radio. One query for both tiers.
    return with_phones(result, await phone_presence.phones(fleet.pool, tier_units(result), settings.phone_offline_s))


async def ranked(
    fleet: Fleet, settings: DispatchSettings, row: Mapping[str, Any], exclude: tuple[str, ...] = (), *, road: ReRanker | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """`recommend_for`'s tiers as the index ranks them now (re-ranked by ``road``), without the phones."""
    if row["lat"] is None:
        return {"recommendations": [], "transport": []}
    scene = Point(row["lat"], row["lon"])
    k = settings.recommend_k
    tiers = fleet.recommend_tiers(scene, max(k, settings.road_eta_shortlist) if road else k, needs_from_capabilities(row["needs"]), exclude)
    first, carry = tiers.first_response, tiers.transport
    if road is not None and first + carry:
        # One road query for both tiers: a unit in both is asked about once.
        shortlist = list({r.unit_id: r for r in [*first, *carry]}.values())
        road_s = {r.unit_id: r.road_eta_s for r in await road.rerank(scene, shortlist, len(shortlist)) if r.road_eta_s is not None}
        first, carry = rerank_by_road_eta(first, road_s, k), rerank_by_road_eta(carry, road_s, k)
    return {"recommendations": [r.to_dict() for r in first], "transport": [r.to_dict() for r in carry]}


def tier_units(tiers: dict[str, list[dict[str, Any]]]) -> list[str]:
    return [str(r["unit_id"]) for rows in tiers.values() for r in rows]


def with_phones(tiers: dict[str, list[dict[str, Any]]], found: dict[str, dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    return {tier: [r | {"phone": found[str(r["unit_id"])]} for r in rows] for tier, rows in tiers.items()}


async def get(con: asyncpg.Connection | asyncpg.Pool, incident_id: str, *, lock: bool = False) -> asyncpg.Record:
    try:
        key = uuid.UUID(incident_id)
    except ValueError:
        raise NotFound(f"no incident {incident_id}") from None
    row = await con.fetchrow(f"SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = $1" + (" FOR UPDATE" if lock else ""), key)
    if row is None:
        raise NotFound(f"no incident {incident_id}")
    return row


UPDATABLE = ("location", "address", "kelurahan", "call_type", "priority", "notes", "complaint", "caller_name")


async def update(pool: asyncpg.Pool, actor: audit.Actor, incident_id: str, changes: dict[str, Any], triage: TriageTable) -> asyncpg.Record:
    """Correct or complete an open incident's intake fields as the operator learns more."""
    unknown = sorted(set(changes) - set(UPDATABLE))
    if unknown:
        raise InvalidField("is not a field that can be updated", field=unknown[0])
    if not changes:
        raise InvalidField("name at least one field to change", field=None)
    async with pool.acquire() as con, con.transaction():
        row = await get(con, incident_id, lock=True)
        if row["closed_at"] is not None:
            raise Conflict("the incident is closed", field="status")
        # The stored intake with the changes laid over it, validated as a whole by the core.
        merged: dict[str, Any] = {
            "phone": row["caller_phone"], "address": row["address"], "kelurahan": row["kelurahan"] or "",
            "call_type": row["call_type"], "notes": row["notes"], "caller_name": row["caller_name"],
            "location": {"lat": row["lat"], "lon": row["lon"]} if row["lat"] is not None else None,
        }
        merged |= {k: v for k, v in changes.items() if k != "complaint"}
        # A call type deactivated since intake stays on the incident until the operator changes it.
        kept_type = row["call_type"] if "call_type" not in changes and row["call_type"] not in triage else None
        if kept_type is not None:
            merged["call_type"] = None
        call = call_from_dict({k: v for k, v in merged.items() if v is not None}, received_at=row["received_at"], table=triage)
        complaint = changes.get("complaint", row["complaint"])
        if not isinstance(complaint, str) or len(complaint) > MAX_COMPLAINT:
            raise InvalidField(f"must be text of at most {MAX_COMPLAINT} characters", field="complaint")
        kelurahan, kecamatan = await _area(con, call.kelurahan, call.location)
        if call.priority is not None:
            priority = call.priority
        elif "call_type" in changes and call.call_type is not None:
            priority = triage.get(call.call_type).priority
        else:
            priority = Priority(row["priority"])
        # The needs follow a new call type; otherwise they stay as taken at intake (the type may be inactive now).
        needs = call_needs(triage, call.call_type).capabilities() if "call_type" in changes else row["needs"]
        updated = await con.fetchrow(
            f"""UPDATE incidents SET lat = $2, lon = $3, address = $4, kelurahan = $5, kecamatan = $6, call_type = $7,
                    priority = $8, notes = $9, complaint = $10, caller_name = $11, needs = $12
                WHERE id = $1 RETURNING {INCIDENT_COLUMNS}""",
            row["id"], call.location.lat if call.location else None, call.location.lon if call.location else None,
            call.address, kelurahan, kecamatan, kept_type or call.call_type, priority.value, call.notes, complaint.strip(), call.caller_name,
            needs,
        )
        await events.append(
            con, "incident.updated",
            {"incident_id": incident_id, "incident": incident_json(updated), "changed": sorted(changes), "by": actor.username,
             **state_of(updated)},
            [OPERATORS, *await active_unit_audience(con, row["id"])],
        )
        await audit.record(con, actor, "incident.update", f"incident:{incident_id}", {"changed": sorted(changes)})
    return updated


def state_of(row: asyncpg.Record) -> dict[str, Any]:
    """The incident's state and assignment version as stored, for an event that changes the incident otherwise."""
    return {"incident_status": row["status"], "assignment_version": row["assignment_version"]}


async def active_unit_audience(con: asyncpg.Connection, incident_key: uuid.UUID) -> list[str]:
    rows = await con.fetch("SELECT unit_id FROM assignments WHERE incident_id = $1 AND ended_at IS NULL", incident_key)
    return [f"unit:{r['unit_id']}" for r in rows]
