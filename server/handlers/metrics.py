"""``GET /metrics``: this process's series in the Prometheus text format.

Only for scrapers: a client address in ``metrics.allow_from`` (the address after
``server.trusted_proxies``, `server.client_address`) or ``Authorization: Bearer``
with ``metrics.token``. The route is public to the session check: it never takes a
user's session, and a user's token opens nothing here.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import secrets

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from server.api_schemas import FILE
from server.client_address import client_address, networks
from server.errors import Forbidden, Unauthorized
from server.keys import BACKUP_LAST_SUCCESS, CONFIG, METRIC_STATE, METRICS, POOL
from server.middlewares import bearer_token
from server.roles import PUBLIC
from server.routing import Routes

log = logging.getLogger(__name__)
routes = Routes("operations")
# A database that does not answer SELECT 1 within this is down for the scrape (Prometheus waits 10 s by default).
PROBE_TIMEOUT_S = 2.0


def _admit(request: web.Request) -> None:
    """Return if the scraper may read the metrics; else 401 (a token is accepted here) or 403."""
    settings = request.app[CONFIG].metrics
    address = client_address(request)
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        ip = None
    if ip is not None and any(ip in net for net in networks(settings.allow_from)):
        return
    if not settings.token:
        raise Forbidden("metrics are served to metrics.allow_from only")
    token = bearer_token(request)
    if token is None or not secrets.compare_digest(token.encode(), settings.token.encode()):
        raise Unauthorized("the metrics token is required (Authorization: Bearer ...)")


async def _read_states(app: web.Application) -> None:
    """The series that are states of the database, read now."""
    metrics = app[METRICS]
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_S):
            await app[POOL].fetchval("SELECT 1")
        metrics.database_up.set(1)
    except Exception:  # whatever keeps it from answering, the database is not up for us
        metrics.database_up.set(0)
    provider = app.get(BACKUP_LAST_SUCCESS)
    if provider is None:
        return
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_S):
            last = await provider(app)
    except Exception as exc:  # the last value read stays: an alert on the age fires only on a real age
        log.warning("the last backup could not be read (%s)", type(exc).__name__)
        return
    app[METRIC_STATE].backup_last_success = last.timestamp() if last is not None else 0.0


@routes.route("GET", "/metrics", roles=PUBLIC, summary="Prometheus metrics of this process (from metrics.allow_from, or Authorization: Bearer <metrics.token>)", returns={200: FILE})
async def metrics(request: web.Request) -> web.Response:
    _admit(request)
    await _read_states(request.app)
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
