"""The aiohttp application factory."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import WSCloseCode, web

from server import assignments, backup_runs, consult_sweep, db, incidents, migrate, outages, recording, retention, rooms, security_headers, unassessed
from server.bus import EventBus
from server.config import Config
from server.fleet import Fleet
from server.gc_pauses import watch as watch_gc_pauses
from server.handlers import audit_log, auth, calls, dispatch_live, docs, health, incident_records, live, region, static, triage, units, web_config
from server.handlers import consults as consult_handlers
from server.handlers import fhir_export as fhir_handlers
from server.handlers import hospital_board as board_handlers
from server.handlers import hospital_notice as notice_handlers
from server.handlers import hospital_referrals as referral_handlers
from server.handlers import metrics as metrics_handlers
from server.keys import BUS, CONFIG, ENDPOINTS, FLEET, METRIC_STATE, METRICS, PASSWORDS, POOL, POSITIONS, REVOCATIONS, TRIAGE, WEBSOCKETS
from server.memory_trim import trimming
from server.metrics import Metrics, StateCollector, http_latency
from server.middlewares import access, errors, request_ids
from server.passwords import Passwords
from server.phone_presence import sweeper as phone_presence_sweeper
from server.positions import Positions
from server.revocation import Revocations
from server.road_eta import OsrmEta
from server.routing import ENDPOINT_ATTR
from server.satusehat import client_context as satusehat_client
from server.strict_input import guard
from server.tasks import cancel_and_wait
from server.triage_cache import TriageCache

log = logging.getLogger(__name__)

# The static catch-all goes last so it never shadows an API route.
ROUTE_MODULES = (
    health, docs, auth, region, audit_log, live, calls, incident_records, units, triage, dispatch_live, consult_handlers, web_config,
    board_handlers, notice_handlers, referral_handlers, metrics_handlers, fhir_handlers, static,
)


def create_app(config: Config, dsn: str) -> web.Application:
    metrics = Metrics()
    app = web.Application(
        middlewares=[http_latency(metrics), request_ids, errors, guard, access],
        client_max_size=config.server.max_body_bytes,
    )
    app[CONFIG] = config
    app[METRICS], app[METRIC_STATE] = metrics, StateCollector(app)
    metrics.registry.register(app[METRIC_STATE])
    app[PASSWORDS] = Passwords(config.auth)
    app[WEBSOCKETS] = set()
    app[ENDPOINTS] = []
    for module in ROUTE_MODULES:
        module.routes.add_to(app)
        app[ENDPOINTS].extend(module.routes.endpoints)
    _check_every_route_declared(app)
    security_headers.setup(app, config)
    app.cleanup_ctx.append(watch_gc_pauses)
    app.cleanup_ctx.append(trimming)
    app.cleanup_ctx.append(_database(dsn))
    app.cleanup_ctx.append(_live(dsn))
    app.cleanup_ctx.append(unassessed.assess_left_over)
    app.cleanup_ctx.append(rooms.hub_context)
    recording.setup(app)  # after the hub: its recorders stop before the hub does
    app.cleanup_ctx.append(consult_sweep.sweeper)
    app.cleanup_ctx.append(retention.sweeper)
    app.cleanup_ctx.append(_ack_timeouts)
    app.cleanup_ctx.append(phone_presence_sweeper)
    app.cleanup_ctx.append(backup_runs.scheduler(dsn))
    app.cleanup_ctx.append(satusehat_client)
    app.on_shutdown.append(_close_websockets)
    app.on_cleanup.append(_stop_hashing)
    return app


def _check_every_route_declared(app: web.Application) -> None:
    for route in app.router.routes():
        if not hasattr(route.handler, ENDPOINT_ATTR):
            raise RuntimeError(f"route {route.method} {route.resource} declares no access")


def _database(dsn: str):  # type: ignore[no-untyped-def]
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        config = app[CONFIG]
        pool = await db.create_pool(dsn, config.database)
        try:
            async with db.session_scoped(pool) as con:  # the migration lock is a session lock
                await migrate.migrate(con)
            app[POOL] = pool
            yield
        finally:
            await pool.close()

    return ctx


def _live(dsn: str):  # type: ignore[no-untyped-def]
    """The event bus and what hangs on it: the fleet index and the GPS feed."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        settings = app[CONFIG].dispatch
        pool = app[POOL]
        async with pool.acquire() as con:
            await incidents.seed_triage(con)
        bus = EventBus(dsn, pool, app[METRICS])
        app[REVOCATIONS] = Revocations()
        bus.before_delivery(app[REVOCATIONS].seen)
        app[TRIAGE] = TriageCache(pool)
        bus.before_delivery(app[TRIAGE].seen)
        routing = aiohttp.ClientSession() if settings.road_eta_url else None
        fleet = Fleet(pool, bus, settings, road=OsrmEta(routing, settings) if routing else None)
        positions = Positions(dsn, fleet, bus, settings, app[METRICS])  # registers its channel before the bus connects
        await bus.start()
        await fleet.start()
        await positions.start()
        app[BUS], app[FLEET], app[POSITIONS] = bus, fleet, positions
        try:
            yield
        finally:
            await positions.stop()
            await fleet.stop()
            await bus.stop()
            if routing is not None:
                await routing.close()

    return ctx


async def _ack_timeouts(app: web.Application) -> AsyncIterator[None]:
    """Withdraw unacknowledged dispatches; deadlines live in the database, so a restart loses none."""

    settings = app[CONFIG].dispatch

    async def sweep() -> None:
        triage = await app[TRIAGE].get()
        while await assignments.sweep_ack_timeouts(app[POOL], app[FLEET], settings, triage, app[METRICS]):
            pass

    outage = outages.OutageLog(log, "acknowledgement sweep", app[METRICS])
    task = asyncio.create_task(outages.every(settings.ack_sweep_s, sweep, outage), name="ack-timeouts")
    yield
    await cancel_and_wait(task)


async def _stop_hashing(app: web.Application) -> None:
    app[PASSWORDS].close()


async def _close_websockets(app: web.Application) -> None:
    sockets = app[WEBSOCKETS]
    for ws in list(sockets):
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutting down")
