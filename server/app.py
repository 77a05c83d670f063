"""The aiohttp application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import WSCloseCode, web

from server import db, migrate
from server.config import Config
from server.bus import EventBus
from server.handlers import audit_log, auth, docs, health, live, region, static
from server.keys import BUS, CONFIG, ENDPOINTS, PASSWORDS, POOL, WEBSOCKETS
from server.middlewares import access, errors, request_ids
from server.passwords import Passwords
from server.routing import ENDPOINT_ATTR

log = logging.getLogger(__name__)

# The static catch-all goes last so it never shadows an API route.
ROUTE_MODULES = (health, docs, auth, region, audit_log, live, static)


def create_app(config: Config, dsn: str) -> web.Application:
    app = web.Application(
        middlewares=[request_ids, errors, access],
        client_max_size=config.server.max_body_bytes,
    )
    app[CONFIG] = config
    app[PASSWORDS] = Passwords(config.auth)
    app[WEBSOCKETS] = set()
    app[ENDPOINTS] = []
    for module in ROUTE_MODULES:
        module.routes.add_to(app)
        app[ENDPOINTS].extend(module.routes.endpoints)
    _check_every_route_declared(app)
    app.cleanup_ctx.append(_database(dsn))
    app.cleanup_ctx.append(_event_bus(dsn))
    app.on_shutdown.append(_close_websockets)
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
            async with pool.acquire() as con:
                await migrate.migrate(con)
            app[POOL] = pool
            yield
        finally:
            await pool.close()

    return ctx


def _event_bus(dsn: str):  # type: ignore[no-untyped-def]
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        bus = EventBus(dsn, app[POOL])
        await bus.start()
        app[BUS] = bus
        yield
        await bus.stop()

    return ctx


async def _close_websockets(app: web.Application) -> None:
    sockets = app[WEBSOCKETS]
    for ws in list(sockets):
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutting down")
