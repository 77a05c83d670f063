"""Login, logout and who am I."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

import pydantic
from aiohttp import web

from server import audit, login_limits, sessions
from server.api_schemas import ACCOUNT, STRING, TIME, obj
from server.client_address import client_address
from server.errors import TooManyRequests, Unauthorized
from server.hash_slots import HashingBusy
from server.keys import CONFIG, METRICS, PASSWORDS, POOL, USER
from server.middlewares import bearer_token
from server.roles import ALL_ROLES, PUBLIC
from server.routing import Routes, json_response, read_body
from server.users import COLUMNS, User

log = logging.getLogger(__name__)
routes = Routes("auth")


class LoginBody(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    username: str = pydantic.Field(min_length=1, max_length=63)
    password: str = pydantic.Field(min_length=1, max_length=1024)


def actor_of(request: web.Request) -> audit.Actor:
    user = request[USER]
    return audit.Actor(user.id, user.username, client_address(request))


@routes.route("POST", "/api/auth/login", roles=PUBLIC, summary="Exchange a username and password for a session token", body=LoginBody, returns={200: obj(token=STRING, expires_at=TIME, user=ACCOUNT)})
async def login(request: web.Request) -> web.Response:
    body = await read_body(request, LoginBody)
    settings = request.app[CONFIG].auth
    pool = request.app[POOL]
    address = client_address(request)
    username = body.username.lower()
    actor = audit.Actor(None, username, address)
    row = await pool.fetchrow(f"SELECT {COLUMNS}, password_hash FROM users WHERE username = $1", username)
    attempt = await login_limits.reserve(pool, settings, username, address, known=row is not None)
    if isinstance(attempt, login_limits.Refused):
        log.warning("login refused: too many failures (%s)", attempt.limit)
        request.app[METRICS].login_refused(attempt.limit)
        await audit.record(pool, actor, "auth.login_blocked", f"username:{username}", {"limit": attempt.limit})
        raise TooManyRequests(
            f"too many failed logins; try again in {attempt.retry_after_s} seconds", retry_after_s=attempt.retry_after_s
        )
    # The per-account slowdown waits here, before a hashing slot is taken.
    await asyncio.sleep(attempt.delay_s)
    try:
        ok = await request.app[PASSWORDS].verify(row["password_hash"] if row else None, body.password, attempt.rank)
    except HashingBusy:
        request.app[METRICS].login_refused("hashing_busy")
        await login_limits.unchecked(pool, attempt)
        raise
    if row is None or not ok or row["disabled_at"] is not None:
        log.warning("failed login (the account's checks were delayed %.1f s)", attempt.delay_s)
        request.app[METRICS].login_failures.inc()
        await audit.record(pool, actor, "auth.login_failed", f"username:{username}")
        raise Unauthorized("wrong username or password", code="wrong_credentials")
    user = User.from_row(row)
    async with pool.acquire() as con, con.transaction():
        await login_limits.succeeded(con, attempt)
        token, expires = await sessions.create(con, user.id, dt.timedelta(hours=settings.session_ttl_h), address)
        await audit.record(con, audit.Actor(user.id, user.username, address), "auth.login", f"user:{user.id}")
    await login_limits.forget_expired(pool, settings.login_window_s)
    return json_response({"token": token, "expires_at": expires, "user": user.public()})


@routes.route("POST", "/api/auth/logout", roles=ALL_ROLES, summary="Revoke the session token used for this request", returns={200: obj(status=STRING)})
async def logout(request: web.Request) -> web.Response:
    token = bearer_token(request)
    assert token is not None  # the access middleware let the request through with it
    async with request.app[POOL].acquire() as con, con.transaction():
        await sessions.revoke(con, token)
        await audit.record(con, actor_of(request), "auth.logout", f"user:{request[USER].id}")
    return json_response({"status": "logged out"})


@routes.route("GET", "/api/me", roles=ALL_ROLES, summary="The signed-in user", returns={200: ACCOUNT})
async def me(request: web.Request) -> web.Response:
    return json_response(request[USER].public())
