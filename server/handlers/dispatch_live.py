"""The live dispatch sockets: a field unit's phone, and the operators' console."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from aiohttp import WSMessage, web

from dispatch.geo import Point
from dispatch.status import Actor, UnitStatus, next_statuses
from server import assignments, audit, crew_reports, incidents, missed_dispatches, phone_presence, unit_messages, unit_replay
from server.api_schemas import ANY
from server.fleet import UNIT_COLUMNS, crew_moves, unit_snapshot
from server.handlers.auth import actor_of
from server.keys import CONFIG, METRICS, PHONE_REFRESHES, POOL, POSITIONS, SESSION, TRIAGE, USER
from server.live import SocketKind, audience_of, resume_point, serve_socket
from server.positions import Fix, PositionFeed, Positions
from server.roles import Role
from server.routing import Routes
from server.superseded import replaced_by_waiting

routes = Routes("live")
POSITION = {"type": "position"}  # what a superseded fix counts as against the socket's limits
CHEAP = frozenset({"ping", "position"})  # one for every phone socket
IN_TRANSACTION = frozenset({"ack", "status"})  # their change reads the session itself


async def unit_state(request: web.Request, actor: audit.Actor, resumed: int | None) -> dict[str, Any]:
    """The unit as it is now, and the dispatch it is on: what a phone needs after (re)connecting; what it missed
    since ``resumed`` if it resumed (after its horizon: a phone back from a week away reads a window's events, not
    the week's)."""
    unit_id = request[USER].unit_id
    assert unit_id is not None  # the route admits field_team accounts only, each bound to a unit
    pool, settings = request.app[POOL], request.app[CONFIG].dispatch
    async with pool.acquire() as con:
        unit = await con.fetchrow(f"SELECT {UNIT_COLUMNS} FROM units WHERE id = $1", unit_id)
        active = await assignments.active_assignment(con, unit_id)
        dispatch = None
        if active is not None:
            incident = await incidents.get(con, str(active["incident_id"]))
            triage = await request.app[TRIAGE].get()
            call_type = triage.get(incident["call_type"]) if incident["call_type"] in triage else None
            dispatch = {"assignment": assignments.assignment_json(active), "incident": incidents.crew_view(incident, call_type)}
            await audit.record(con, actor, "incident.read", f"incident:{incident['id']}", {"via": "unit socket"})
        missed = [] if resumed is None else await missed_dispatches.missed(con, unit_id, resumed, settings.unit_replay_h)
        for entry in missed:
            await audit.record(con, actor, "incident.read", f"incident:{entry['incident']['incident_id']}", {"via": "missed dispatch"})
    status = UnitStatus(unit["status"])
    return {
        "unit": unit_snapshot(unit),
        "dispatch": dispatch,
        "next_statuses": [s.value for s in next_statuses(status, Actor.CREW)],
        # Every status's crew moves: a phone without signal still offers the right buttons.
        "crew_table": {s.value: crew_moves(s) for s in UnitStatus},
        # Dispatches withdrawn for no answer while the phone was away (it resumed from before them).
        "missed": missed,
        # The phone pings this often, and takes its link for dead when its pings go unanswered.
        "ping_s": settings.phone_ping_s,
    }


class UnitPhone(SocketKind):
    """A field unit's phone socket. GPS fixes and pings change no state: they rely on the socket closing when the
    session ends."""

    __slots__ = ("request", "unit_id", "actor", "presence", "session_id")
    cheap = CHEAP
    confirmed = IN_TRANSACTION

    def __init__(self, request: web.Request, unit_id: str, actor: audit.Actor, presence: phone_presence.PhoneSocket) -> None:
        self.request, self.unit_id, self.actor, self.presence = request, unit_id, actor, presence
        self.session_id = request[SESSION].id

    async def greeting(self, resumed: int | None) -> dict[str, Any]:
        return await unit_state(self.request, self.actor, resumed)

    async def horizon(self) -> int | None:
        app = self.request.app
        return await unit_replay.horizon(app[POOL], self.unit_id, app[CONFIG].dispatch.unit_replay_h)

    def superseded(self, ws: web.WebSocketResponse, frame: WSMessage) -> dict[str, Any] | None:
        if replaced_by_waiting(ws, frame, "position"):
            self.request.app[POSITIONS].drop_superseded()
            return POSITION
        return None

    async def closed(self) -> None:
        await self.presence.close()

    async def on_message(self, raw: dict[str, Any]) -> dict[str, Any] | None:
        app, unit_id, actor = self.request.app, self.unit_id, self.actor
        self.presence.heard()
        message = unit_messages.parse(raw, dt.datetime.now(dt.UTC))
        ref = raw.get("ref")
        if isinstance(message, unit_messages.PositionReport):
            app[POSITIONS].submit(Fix(unit_id, Point(message.lat, message.lon), message.at, message.accuracy))
            await asyncio.sleep(0)  # a phone's backlog of fixes is taken in between the loop's other work (the flush), not ahead of it
            return None
        if isinstance(message, (unit_messages.VitalsReport, unit_messages.DestinationReport, unit_messages.HandoverReport)):
            return {"type": "ok", "ref": ref, "report": message.type, **await crew_reports.handle(app[POOL], actor, unit_id, message)}
        if isinstance(message, unit_messages.Ack):
            result = await assignments.acknowledge(
                app[POOL], actor, unit_id, message.assignment_id, app[METRICS],
                report_id=message.sent.report_id, reported_at=message.sent.reported_at, session_id=self.session_id,
            )
        elif isinstance(message, unit_messages.StatusReport):
            result = await assignments.change_status(
                app[POOL], actor, unit_id, message.status, message.reason, app[METRICS], crew=True, assignment_id=message.assignment_id,
                report_id=message.sent.report_id, reported_at=message.sent.reported_at, session_id=self.session_id,
            )
        else:
            return {"type": "pong", "ref": ref}
        status = UnitStatus(result["status"])
        return {"type": "ok", "ref": ref, "status": status.value, "next_statuses": [s.value for s in next_statuses(status, Actor.CREW)],
                "crew_moves": crew_moves(status), "unit": result["unit"], "duplicate": result.get("duplicate", False)}


@routes.route("GET", "/ws/unit", roles=frozenset({Role.FIELD_TEAM}), summary="Websocket for a field unit's phone: dispatches in; ack, status and GPS out; ?after=N resumes", returns={101: ANY})
async def unit_socket(request: web.Request) -> web.StreamResponse:
    user = request[USER]
    unit_id = user.unit_id
    assert unit_id is not None  # a field_team account is bound to a unit (a database constraint)
    resume_point(request)  # a bad ?after is refused before the phone counts as connected
    presence = phone_presence.PhoneSocket(request.app[POOL], request.app[PHONE_REFRESHES], unit_id, request.app[CONFIG].dispatch)
    await presence.open()
    return await serve_socket(request, audience_of(user), UnitPhone(request, unit_id, actor_of(request), presence))


class Console(SocketKind):
    """An operators' console socket: its events, and the units' positions batched."""

    __slots__ = ("positions", "side")
    compress = True

    def __init__(self, positions: Positions) -> None:
        self.positions = positions
        self.side: PositionFeed = positions.listen()

    async def closed(self) -> None:
        self.positions.unlisten(self.side)


@routes.route("GET", "/ws/operator", roles=frozenset({Role.OPERATOR, Role.ADMIN}), summary="Websocket for the console: calls, recommendations, assignments, statuses, alerts; unit positions batched; ?after=N resumes", returns={101: ANY})
async def operator_socket(request: web.Request) -> web.StreamResponse:
    return await serve_socket(request, audience_of(request[USER], "role:operator"), Console(request.app[POSITIONS]))
