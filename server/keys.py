"""Every object shared through the application or a request, under a typed key."""

from __future__ import annotations

import asyncpg
from aiohttp import web

from server.bus import EventBus
from server.config import Config
from server.passwords import Passwords
from server.routing import Endpoint
from server.users import User

CONFIG = web.AppKey("config", Config)
POOL = web.AppKey("pool", asyncpg.Pool)
BUS = web.AppKey("bus", EventBus)
PASSWORDS = web.AppKey("passwords", Passwords)
ENDPOINTS = web.AppKey("endpoints", list[Endpoint])
# Open websockets, closed with 1001 (going away) when the server shuts down.
WEBSOCKETS = web.AppKey("websockets", set[web.WebSocketResponse])

USER = web.RequestKey("user", User)
