"""Taking a call: assessed first, then stored with its assessment in one statement.

The units are ranked from the in-memory index first; one read then gives the rest of what the assessment
needs (the database's time, the newest event committed, the ranked units' phones, the call's kelurahan and
the incidents it may repeat); the core judges the duplicates; then a single statement, a transaction of its
own, stores the call with its warnings, its audit entry and its two events (``call.received``,
``call.assessed``). A call costs one commit and three statements, where storing it and assessing it in two
transactions cost two commits and ten.

Nothing accepted is lost: if the assessment raises, the call is stored unassessed as before
(`incidents.record_call`) and the request fails; its retry, or the next start-up (`server.unassessed`),
assesses it. Of two calls taken at the same moment at the same place, each may read before the other is
stored; so once stored, a call reads the incidents it may repeat again (the third statement, which also tells
the event channel, now that the call has committed). The second of the two to read again sees the first: its
new warnings are stored and announced (``call.assessed`` again).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import uuid
from typing import Any

import asyncpg

from dispatch.call import Call
from dispatch.doctrine import call_needs
from dispatch.duplicates import DuplicateRules
from dispatch.triage import TriageTable
from server import areas, audit, call_warnings, events, incidents, phone_presence
from server.announcing import AnnouncingConnection
from server.config import DispatchSettings
from server.errors import ApiError
from server.fleet import Fleet
from server.statements import Params

log = logging.getLogger(__name__)


def _read(params: Params, incident_id: uuid.UUID, call: Call, rules: DuplicateRules, units: list[str], offline_s: float) -> str:
    """The time the call is taken at and the newest event committed before it, the phones of the ``units`` ranked for
    it, the call's area (named or nearest), and the incidents it may repeat: at least one row (the last two are outer
    joins; a row without an id is no incident)."""
    return f"""SELECT taken.*, phones.*,
            area.code AS area_code, area.kecamatan AS area_kecamatan, area.lat AS area_lat, area.lon AS area_lon, candidate.*
        FROM (SELECT now() AS taken_at, (SELECT coalesce(max(id), 0) FROM events) AS events_seen) AS taken
        CROSS JOIN (SELECT array_agg(unit_id) AS phone_units, array_agg(last_seen) AS phone_last_seen, array_agg(connected) AS phone_connected
                    FROM ({phone_presence.presence_sql(f"{params.add(units)}::text[]", params.add(offline_s))}) AS p) AS phones
        LEFT JOIN LATERAL ({areas.sql(params, call.kelurahan, call.location)}) AS area ON true
        LEFT JOIN LATERAL ({call_warnings.sql(params, "now()", incident_id, call.phone, call.location, rules)}) AS candidate ON true"""


def _write(params: Params, intake: tuple[Any, ...], entry: audit.Entry, by: str, assessed: dict[str, Any]) -> str:
    """The call (its ``intake`` values, the time it was taken and its warnings), its audit entry and its events, in
    order: an existing idempotency key stores none of them."""
    return f"""WITH stored AS (
            INSERT INTO incidents ({incidents.INTAKE_COLUMNS}, received_at, warnings, assessed_at)
            VALUES ({params.add_all(intake)}, now())
            ON CONFLICT (idempotency_key) DO NOTHING
            RETURNING {incidents.INCIDENT_COLUMNS}),
        {entry.cte(params, after="stored")},
        announced AS (
            SELECT append_event(e.type, {params.add([incidents.OPERATORS])}::text[], e.payload, true) FROM (
                SELECT 1 AS n, 'call.received' AS type,
                       jsonb_build_object('incident_id', id::text, 'incident', {incidents.incident_json_sql('stored')},
                                          'by', {params.add(by)}::text) AS payload
                FROM stored
                UNION ALL SELECT 2, 'call.assessed', {params.add(assessed)}::jsonb FROM stored
                ORDER BY n) AS e)
        SELECT stored.* FROM stored, (SELECT count(*) FROM announced) AS appended"""


@dataclasses.dataclass(frozen=True, slots=True)
class Taken:
    """The call as stored; for a call this request stored, its warnings and both tiers of units (else None)."""

    row: asyncpg.Record
    created: bool
    warnings: list[dict[str, Any]] | None = None
    tiers: dict[str, list[dict[str, Any]]] | None = None


async def take(
    pool: asyncpg.Pool, fleet: Fleet, settings: DispatchSettings, actor: audit.Actor, intake: incidents.CallIntake, triage: TriageTable,
) -> Taken:
    call = incidents.parse_call(intake, triage)
    rules = call_warnings.rules_of(settings)
    incident_id = uuid.uuid4()
    scene = {"lat": call.location.lat if call.location else None, "lon": call.location.lon if call.location else None,
             "needs": call_needs(triage, call.call_type).capabilities()}
    try:
        # Ranked before the read, so that it reads the units' phones too; good if the index had then seen every
        # event the read sees (else ranked again once it has).
        applied = fleet.applied_id
        ranked = await incidents.ranked(fleet, settings, scene, road=fleet.road)
        units = incidents.tier_units(ranked)
        params = Params()
        read = await pool.fetch(_read(params, incident_id, call, rules, units, settings.phone_offline_s), *params.values)
        first = read[0]
        found = None if first["area_code"] is None else (first["area_code"], first["area_kecamatan"], first["area_lat"], first["area_lon"])
        area = areas.area(call.kelurahan, call.location, found)  # an unknown kelurahan is refused before anything is stored
        warnings = call_warnings.warnings(read, call.phone, call.location, first["taken_at"], dt.datetime.now(dt.UTC), rules)
        heard = zip(first["phone_units"] or (), first["phone_last_seen"] or (), first["phone_connected"] or (), strict=True)
        phones = phone_presence.presence(heard, units)
        if applied < first["events_seen"]:
            await fleet.caught_up(first["events_seen"])
            ranked = await incidents.ranked(fleet, settings, scene, road=fleet.road)
            if not set(incidents.tier_units(ranked)) <= set(units):
                phones = await phone_presence.phones(pool, incidents.tier_units(ranked), settings.phone_offline_s)
        tiers = incidents.with_phones(ranked, phones)
    except ApiError:
        raise  # bad input: nothing is stored
    except Exception:
        await incidents.record_call(pool, actor, intake, triage)
        log.exception("a call could not be assessed at intake: stored unassessed, to be assessed on its retry or at the next start")
        raise
    values = incidents.intake_values(incident_id, actor, intake, call, triage, area)
    entry = audit.Entry(actor, "call.create", f"incident:{incident_id}")
    assessed = {"incident_id": str(incident_id), "warnings": warnings, **tiers}
    params = Params()
    write = _write(params, (*values, first["taken_at"], warnings), entry, actor.username, assessed)
    async with pool.acquire() as con:
        row = await con.fetchrow(write, *params.values)
        if row is None:
            return Taken(await incidents.existing(con, intake), False)
        late = await _late_warnings(con, incident_id, call, first["taken_at"], rules, [r["id"] for r in read if r["id"] is not None])
        if late:
            warnings = warnings + late
            async with con.transaction():
                await con.execute("UPDATE incidents SET warnings = $2 WHERE id = $1", incident_id, warnings)
                await events.append(con, "call.assessed", assessed | {"warnings": warnings}, [incidents.OPERATORS])
    return Taken(row, True, warnings, tiers)


async def _late_warnings(
    con: AnnouncingConnection, incident_id: uuid.UUID, call: Call, taken_at: dt.datetime, rules: DuplicateRules, judged: list[uuid.UUID],
) -> list[dict[str, Any]]:
    """The duplicates among the calls stored between this call's read and its commit, read after the commit (those
    ``judged`` were, and a prank's count is not made by calls taken at once); the read announces the call's events."""
    params = Params()
    candidates = call_warnings.sql(params, f"{params.add(taken_at)}::timestamptz", incident_id, call.phone, call.location, rules)
    rows = await con.fetch_announcing(
        f"SELECT * FROM ({candidates}) AS c WHERE NOT c.prank AND c.id <> ALL({params.add(judged)}::uuid[])", *params.values, key="id",
    )
    if not rows:
        return []
    return call_warnings.warnings(rows, call.phone, call.location, taken_at, dt.datetime.now(dt.UTC), rules)
