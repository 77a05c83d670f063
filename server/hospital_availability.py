"""Hospitals' availability figures: reading them for the board and the ranking, and a hospital's update.

One row per figure (migration 0018): an update writes only the figures it names, so two desks of one
hospital setting different classes at once keep both. Rows are written in a fixed order (class or
service name) so two updates naming the same figures in different orders wait for each other instead of
deadlocking. Times are the database's, so every process judges age by one clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import asyncpg

from dispatch.availability import BED_CLASSES, Availability, Figure, Freshness, freshness, parse_beds, parse_service_states
from server import audit, events
from server.errors import Forbidden, InvalidField, NotFound
from server.roles import Role
from server.users import User

EVENT = "hospital.availability"
# Who sees the board live: the dispatch room chooses destinations, the Dinkes watches, hospitals see each
# other's figures (a referral they pass on), specialists choose the hospital a referral goes to.
AUDIENCE = ("role:operator", "role:admin", "role:hospital", "role:specialist")
DEMO_SETTER = "demo"


async def load(con: asyncpg.Connection | asyncpg.Pool, code: str | None = None) -> dict[str, Availability]:
    """Every hospital's reported figures (or one's); a service figure counts only while the hospital still has it."""
    beds = await con.fetch(
        "SELECT facility_code, bed_class, free, set_at, set_by FROM hospital_beds WHERE $1::text IS NULL OR facility_code = $1", code
    )
    states = await con.fetch(
        """SELECT s.facility_code, s.service, s.available, s.set_at, s.set_by FROM hospital_service_states s
           JOIN facilities f ON f.code = s.facility_code AND s.service = ANY(f.services)
           WHERE $1::text IS NULL OR s.facility_code = $1""", code
    )
    by_code: dict[str, tuple[dict[str, Figure], dict[str, Figure]]] = {}
    for r in beds:
        by_code.setdefault(r["facility_code"], ({}, {}))[0][r["bed_class"]] = Figure(r["free"], r["set_at"], r["set_by"])
    for r in states:
        by_code.setdefault(r["facility_code"], ({}, {}))[1][r["service"]] = Figure(r["available"], r["set_at"], r["set_by"])
    return {code: Availability(b, s) for code, (b, s) in by_code.items()}


async def now(con: asyncpg.Connection | asyncpg.Pool) -> dt.datetime:
    """The database's clock, which stamped the figures."""
    at: dt.datetime = await con.fetchval("SELECT now()")
    return at


def figures_json(services: list[str], figures: Availability, at: dt.datetime, stale_after: dt.timedelta) -> dict[str, Any]:
    """A hospital's figures as the API shows them: every bed class and every service it has, null when never reported."""
    return {
        "beds": {c: _figure(figures.beds.get(c), "free", at, stale_after) for c in BED_CLASSES},
        "services_now": {s: _figure(figures.services.get(s), "available", at, stale_after) for s in sorted(services)},
    }


def _figure(figure: Figure | None, name: str, at: dt.datetime, stale_after: dt.timedelta) -> dict[str, Any] | None:
    if figure is None:
        return None
    return {name: figure.value, "at": figure.at.isoformat(), "by": figure.by, "age_s": max(0.0, (at - figure.at).total_seconds()),
            "stale": freshness(figure, at, stale_after) is Freshness.STALE}


async def board(con: asyncpg.Connection | asyncpg.Pool, stale_after: dt.timedelta) -> dict[str, Any]:
    """Every hospital's figures, by name."""
    rows = await con.fetch("SELECT code, name, services FROM facilities WHERE kind = 'hospital' ORDER BY name, code")
    figures, at = await load(con), await now(con)
    return {
        "now": at.isoformat(), "stale_after_s": stale_after.total_seconds(), "bed_classes": list(BED_CLASSES),
        "hospitals": [_entry(r, figures.get(r["code"], Availability()), at, stale_after) for r in rows],
    }


def _entry(hospital: asyncpg.Record, figures: Availability, at: dt.datetime, stale_after: dt.timedelta) -> dict[str, Any]:
    return {"code": hospital["code"], "name": hospital["name"], "services": sorted(hospital["services"]),
            **figures_json(hospital["services"], figures, at, stale_after)}


async def hospital_for(con: asyncpg.Connection, user: User, code: str) -> asyncpg.Record:
    """The hospital ``user`` may update: a hospital account its own only (403 for another); an admin any (404 for none)."""
    row: asyncpg.Record | None = await con.fetchrow(
        "SELECT code, name, services FROM facilities WHERE code = $1 AND kind = 'hospital'", code
    )
    if row is None:
        raise NotFound(f"no hospital {code!r}", field="code")
    if user.role is not Role.ADMIN and user.facility_code != code:
        raise Forbidden("a hospital account updates its own hospital's figures only", field="code")
    return row


async def update(
    con: asyncpg.Connection, actor: audit.Actor, hospital: asyncpg.Record, beds: object, services: object, stale_after: dt.timedelta,
) -> dict[str, Any]:
    """Set the named figures of ``hospital`` (checked: 422 naming the field, nothing written), in the caller's
    transaction, with the event and the audit entry; the hospital's figures after."""
    counts = parse_beds(beds)
    running = parse_service_states(services, frozenset(hospital["services"]))
    if not counts and not running:
        raise InvalidField("nothing to update: give free beds by class or services true/false", field="beds")
    code = hospital["code"]
    await write(con, code, counts, running, actor.username)
    figures = (await load(con, code)).get(code, Availability())
    at = await now(con)
    entry = _entry(hospital, figures, at, stale_after)
    changed = {"beds": counts, "services": running}
    await events.append(con, EVENT, {"facility": code, "by": actor.username, "changed": changed, "hospital": entry}, AUDIENCE)
    await audit.record(con, actor, EVENT, f"facility:{code}", changed)
    return entry


async def write(con: asyncpg.Connection, code: str, beds: Mapping[str, int], services: Mapping[str, bool], by: str) -> None:
    """Upsert figures, each row stamped now; in name order, so concurrent writers lock rows in one order."""
    if beds:
        classes = sorted(beds)
        await con.execute(
            """INSERT INTO hospital_beds (facility_code, bed_class, free, set_at, set_by)
               SELECT $1, c, n, now(), $4 FROM unnest($2::text[], $3::int[]) WITH ORDINALITY AS u (c, n, i) ORDER BY i
               ON CONFLICT (facility_code, bed_class) DO UPDATE SET free = EXCLUDED.free, set_at = EXCLUDED.set_at, set_by = EXCLUDED.set_by""",
            code, classes, [beds[c] for c in classes], by,
        )
    if services:
        names = sorted(services)
        await con.execute(
            """INSERT INTO hospital_service_states (facility_code, service, available, set_at, set_by)
               SELECT $1, s, a, now(), $4 FROM unnest($2::text[], $3::bool[]) WITH ORDINALITY AS u (s, a, i) ORDER BY i
               ON CONFLICT (facility_code, service) DO UPDATE SET available = EXCLUDED.available, set_at = EXCLUDED.set_at,
                                                                  set_by = EXCLUDED.set_by""",
            code, names, [services[s] for s in names], by,
        )
