"""Units: the fleet board, and the admin's register of units."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import asyncpg
import pydantic
from aiohttp import web

from dispatch.staleness import is_stale
from dispatch.status import UnitStatus
from dispatch.units import parse_unit_kind, unit_capabilities
from server import assignments, audit, events, phone_presence
from server.api_schemas import UNIT, UNIT_STATUS, array, obj
from server.errors import Conflict, InvalidField, NotFound
from server.fleet import UNIT_COLUMNS, unit_snapshot
from server.handlers.auth import actor_of
from server.keys import CONFIG, METRICS, POOL
from server.roles import Role
from server.routing import Routes, json_response, read_body

routes = Routes("units")
UNIT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")


class UnitBody(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    id: str = pydantic.Field(min_length=1, max_length=64, description="lowercase letters, digits and '-'")
    callsign: str = pydantic.Field(min_length=1, max_length=32)
    kind: str = pydantic.Field(description="ambulance or motorbike")
    capabilities: list[str] | None = pydantic.Field(default=None, description="none or empty: the kind's defaults")
    base_lat: float = pydantic.Field(ge=-90, le=90)
    base_lon: float = pydantic.Field(ge=-180, le=180)
    base_facility: str | None = None
    kelurahan: str | None = None
    crew: list[str] = pydantic.Field(default_factory=list, max_length=6)


class UnitPatch(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    callsign: str | None = pydantic.Field(default=None, min_length=1, max_length=32)
    kind: str | None = None
    capabilities: list[str] | None = None
    base_lat: float | None = pydantic.Field(default=None, ge=-90, le=90)
    base_lon: float | None = pydantic.Field(default=None, ge=-180, le=180)
    base_facility: str | None = None
    kelurahan: str | None = None
    crew: list[str] | None = pydantic.Field(default=None, max_length=6)


class DutyBody(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    on_duty: bool


class StatusBody(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    status: str
    reason: str | None = None


def _board_entry(row: asyncpg.Record, max_age: dt.timedelta, now: dt.datetime) -> dict[str, Any]:
    return unit_snapshot(row) | {"stale": row["position_at"] is not None and is_stale(row["position_at"], now, max_age)}


@routes.route("GET", "/api/units", roles=frozenset({Role.OPERATOR, Role.ADMIN}), summary="Every unit with its live status and position", returns={200: obj(units=array(UNIT))})
async def list_units(request: web.Request) -> web.Response:
    rows = await request.app[POOL].fetch(f"SELECT {UNIT_COLUMNS} FROM units ORDER BY callsign")
    max_age = dt.timedelta(seconds=request.app[CONFIG].dispatch.stale_position_s)
    now = dt.datetime.now(dt.UTC)
    board = [_board_entry(r, max_age, now) for r in rows]
    return json_response({"units": await phone_presence.with_phones(request.app[POOL], board, request.app[CONFIG].dispatch.phone_offline_s, key="id")})


async def _check_refs(con: asyncpg.Connection, facility: str | None, kelurahan: str | None) -> None:
    if facility is not None and not await con.fetchval("SELECT 1 FROM facilities WHERE code = $1", facility):
        raise InvalidField(f"no facility {facility!r}", field="base_facility")
    if kelurahan is not None and not await con.fetchval("SELECT 1 FROM kelurahan WHERE code = $1", kelurahan):
        raise InvalidField(f"no kelurahan {kelurahan!r}", field="kelurahan")


def _domain_values(values: dict[str, Any], current: asyncpg.Record | None = None) -> dict[str, Any]:
    """Checked values; the capabilities are the kind's defaults when none are given, and must suit the kind."""
    if "kind" in values:
        values["kind"] = parse_unit_kind(values["kind"]).value
    if current is None or "kind" in values or "capabilities" in values:
        kind = parse_unit_kind(values.get("kind", current["kind"] if current else None))
        given = values["capabilities"] if "capabilities" in values else (list(current["capabilities"]) if current else None)
        values["capabilities"] = sorted(unit_capabilities(kind, given))
    return values


async def _announce(con: asyncpg.Connection, row: asyncpg.Record, type: str, actor: audit.Actor) -> None:
    await events.append(con, type, {"unit_id": row["id"], "unit": unit_snapshot(row), "by": actor.username},
                        ["role:operator", "role:admin", f"unit:{row['id']}"])


@routes.route("POST", "/api/units", roles=frozenset({Role.ADMIN}), summary="Register a unit (starts off duty)", body=UnitBody, returns={201: obj(unit=UNIT)})
async def create_unit(request: web.Request) -> web.Response:
    body = await read_body(request, UnitBody)
    if not UNIT_ID.match(body.id):
        raise InvalidField("lowercase letters, digits and '-', 1-64 characters", field="id")
    values = _domain_values(body.model_dump())
    actor = actor_of(request)
    async with request.app[POOL].acquire() as con, con.transaction():
        await _check_refs(con, body.base_facility, body.kelurahan)
        try:
            row = await con.fetchrow(
                f"""INSERT INTO units (id, callsign, kind, capabilities, base_facility, base_lat, base_lon, kelurahan, crew)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {UNIT_COLUMNS}""",
                values["id"], values["callsign"], values["kind"], values["capabilities"], values["base_facility"],
                values["base_lat"], values["base_lon"], values["kelurahan"], values["crew"],
            )
        except asyncpg.UniqueViolationError:
            raise Conflict("a unit with this id or callsign exists", field="callsign") from None
        await _announce(con, row, "unit.created", actor)
        await audit.record(con, actor, "unit.create", f"unit:{row['id']}")
    return json_response({"unit": unit_snapshot(row)}, status=201)


@routes.route("PATCH", "/api/units/{id}", roles=frozenset({Role.ADMIN}), summary="Change a unit's callsign, kind, capabilities, base or crew", body=UnitPatch, returns={200: obj(unit=UNIT)})
async def update_unit(request: web.Request) -> web.Response:
    changes = (await read_body(request, UnitPatch)).model_dump(exclude_unset=True)
    if not changes:
        raise InvalidField("name at least one field to change", field=None)
    if any(changes.get(k, "") is None for k in ("callsign", "kind", "capabilities", "base_lat", "base_lon", "crew")):
        raise InvalidField("cannot be null", field=next(k for k in changes if changes[k] is None))
    actor = actor_of(request)
    async with request.app[POOL].acquire() as con, con.transaction():
        current = await con.fetchrow("SELECT kind, capabilities FROM units WHERE id = $1 FOR UPDATE", request.match_info["id"])
        if current is None:
            raise NotFound(f"no unit {request.match_info['id']}", field="id")
        changes = _domain_values(changes, current)
        await _check_refs(con, changes.get("base_facility"), changes.get("kelurahan"))
        sets = ", ".join(f"{key} = ${n}" for n, key in enumerate(changes, start=2))
        try:
            row = await con.fetchrow(f"UPDATE units SET {sets} WHERE id = $1 RETURNING {UNIT_COLUMNS}", request.match_info["id"], *changes.values())
        except asyncpg.UniqueViolationError:
            raise Conflict("another unit has this callsign", field="callsign") from None
        if row is None:
            raise NotFound(f"no unit {request.match_info['id']}", field="id")
        await _announce(con, row, "unit.updated", actor)
        await audit.record(con, actor, "unit.update", f"unit:{row['id']}", {"changed": sorted(changes)})
    return json_response({"unit": unit_snapshot(row)})


@routes.route("POST", "/api/units/{id}/duty", roles=frozenset({Role.ADMIN}), summary="Put a unit on duty (available) or off duty", body=DutyBody, returns={200: UNIT_STATUS})
async def set_duty(request: web.Request) -> web.Response:
    body = await read_body(request, DutyBody)
    target = UnitStatus.AVAILABLE if body.on_duty else UnitStatus.OFF_DUTY
    result = await assignments.change_status(request.app[POOL], actor_of(request), request.match_info["id"], target.value, None, request.app[METRICS], crew=False)
    return json_response(result)


@routes.route("POST", "/api/units/{id}/status", roles=frozenset({Role.OPERATOR}), summary="Record a status a crew reported by radio", body=StatusBody, returns={200: UNIT_STATUS})
async def set_status(request: web.Request) -> web.Response:
    body = await read_body(request, StatusBody)
    result = await assignments.change_status(
        request.app[POOL], actor_of(request), request.match_info["id"], body.status, body.reason, request.app[METRICS], crew=False
    )
    return json_response(result)
