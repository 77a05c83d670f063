"""Every object shared through the application or a request, under a typed key."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import asyncpg
from aiohttp import web

from server.bus import EventBus
from server.config import Config
from server.fleet import Fleet
from server.passwords import Passwords
from server.positions import Positions
from server.revocation import Revocations
from server.routing import Endpoint
from server.sessions import Session
from server.users import User

if TYPE_CHECKING:
    from server.metrics import Metrics, StateCollector
    from server.phone_presence import Refreshes
    from server.rooms import RoomHub
    from server.satusehat import Satusehat
    from server.triage_cache import TriageCache

CONFIG = web.AppKey("config", Config)
POOL = web.AppKey("pool", asyncpg.Pool)
BUS = web.AppKey("bus", EventBus)
FLEET = web.AppKey("fleet", Fleet)
POSITIONS = web.AppKey("positions", Positions)
PASSWORDS = web.AppKey("passwords", Passwords)
ENDPOINTS = web.AppKey("endpoints", list[Endpoint])
# Open websockets, closed with 1001 (going away) when the server shuts down.
WEBSOCKETS = web.AppKey("websockets", set[web.WebSocketResponse])
# Telemedicine rooms of this process (server/rooms.py); typed by annotation to avoid an import cycle.
ROOMS: web.AppKey[RoomHub] = web.AppKey("rooms")
# Optional async callables (app, consult_id) -> None that start and stop the consented recorder.
RecorderHook = Callable[[web.Application, str], Awaitable[None]]
RECORDER_HOOK: web.AppKey[RecorderHook] = web.AppKey("recorder_hook")
RECORDER_STOP_HOOK: web.AppKey[RecorderHook] = web.AppKey("recorder_stop_hook")
# This process's Prometheus series (server/metrics.py) and the states read when they are scraped.
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
METRIC_STATE: web.AppKey[StateCollector] = web.AppKey("metric_state")

# This process's sockets by session, closed when their session is revoked (server/revocation.py).
REVOCATIONS = web.AppKey("revocations", Revocations)
TRIAGE: web.AppKey[TriageCache] = web.AppKey("triage")
# The SATUSEHAT client, None unless satusehat.auth_url is set (server/satusehat.py).
SATUSEHAT: web.AppKey[Satusehat | None] = web.AppKey("satusehat")
# The phone sockets heard from, written together (server/phone_presence.py).
PHONE_REFRESHES: web.AppKey[Refreshes] = web.AppKey("phone_refreshes")

USER = web.RequestKey("user", User)
SESSION = web.RequestKey("session", Session)
