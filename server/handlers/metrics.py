"""``GET /metrics``: this process's series in the Prometheus text format.

Only for scrapers: a client address in ``metrics.allow_from`` (the address after
``server.trusted_proxies``, `server.client_address`) or ``Authorization: Bearer``
with ``metrics.token``. The route is public to the session check: it never takes a
user's session, and a user's token opens nothing here.
"""

from __future__ import annotations

import asyncio
import ipaddress
import secrets

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from server import backup_runs, retention
from server.api_schemas import FILE
from server.client_address import client_address, networks
from server.errors import Forbidden, Unauthorized
from server.keys import CONFIG, METRIC_STATE, METRICS, POOL
from server.middlewares import bearer_token
from server.roles import PUBLIC
from server.routing import Routes

routes = Routes("operations")
# A database that does not answer the state reads within this is down for the scrape (Prometheus waits 10 s by default).
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
    """The series that are states of the database, read now; reading them is the probe of ``database_up``."""
    metrics, state = app[METRICS], app[METRIC_STATE]
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_S), app[POOL].acquire() as con:
            backed_up = await backup_runs.last_success(con)
            swept = await retention.last_run(con)
    except Exception:  # whatever keeps it from answering, the database is not up for us; the last values read stay
        metrics.database_up.set(0)
        return
    metrics.database_up.set(1)
    state.backup_last_success = backed_up["finished_at"].timestamp() if backed_up is not None else 0.0
    state.retention_last_run = swept["finished_at"].timestamp() if swept is not None else 0.0
    state.retention_counts = dict(swept["counts"]) if swept is not None else {}


@routes.route("GET", "/metrics", roles=PUBLIC, summary="Prometheus metrics of this process (from metrics.allow_from, or Authorization: Bearer <metrics.token>)", returns={200: FILE})
async def metrics(request: web.Request) -> web.Response:
    _admit(request)
    await _read_states(request.app)
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
