"""Request id, error mapping and access control: the three middlewares every request passes."""

from __future__ import annotations

import logging
import secrets

import asyncpg
from aiohttp import web

from dispatch.errors import DispatchError
from server import sessions
from server.errors import (
    ApiError,
    BadRequest,
    DatabaseUnavailable,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    RetryLater,
    Unauthorized,
    database_unreachable,
    from_domain,
)
from server.keys import CONFIG, METRICS, POOL, SESSION, USER
from server.logs import request_id
from server.routing import Handler, endpoint_of, json_response
from signaling.errors import SignalingError

log = logging.getLogger(__name__)


@web.middleware
async def request_ids(request: web.Request, handler: Handler) -> web.StreamResponse:
    rid = secrets.token_hex(8)
    token = request_id.set(rid)
    try:
        response = await handler(request)
        if not response.prepared:  # a websocket's 101 is out: an open socket keeps no headers (server.upgraded)
            response.headers["X-Request-Id"] = rid
        return response
    finally:
        request_id.reset(token)


def _error(exc: ApiError) -> web.Response:
    response = json_response(exc.body(), status=exc.status)
    if exc.status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    if isinstance(exc, RetryLater) and exc.retry_after_s is not None:
        response.headers["Retry-After"] = str(exc.retry_after_s)
    return response


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return _error(exc)
    except (DispatchError, SignalingError) as exc:
        return _error(from_domain(exc))
    except web.HTTPRequestEntityTooLarge:
        return _error(PayloadTooLarge("body larger than the server's limit (server.max_body_bytes)"))
    except web.HTTPNotFound:
        return _error(NotFound(f"no route {request.path}"))
    except web.HTTPMethodNotAllowed as exc:
        response = json_response(
            {"error": {"code": "method_not_allowed", "message": f"{request.method} is not allowed here", "field": None}},
            status=405,
        )
        response.headers["Allow"] = ",".join(sorted(exc.allowed_methods))
        return response
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return json_response({"error": {"code": "http_error", "message": exc.reason, "field": None}}, status=exc.status)
    except Exception as exc:
        if _client_gone(request):
            # Whatever failed, nobody is waiting for the answer: not a server error, and a broken
            # client connection must not pass for a database outage (both are socket errors).
            log.warning("%s %s: the client went away before it was answered (%s)", request.method, request.path, type(exc).__name__)
            return _error(BadRequest("the client closed the connection"))
        if database_unreachable(exc):
            return _database_unavailable(request, exc)
        if isinstance(exc, asyncpg.PostgresError):
            request.app[METRICS].database_error("request", unreachable=False)
        log.exception("unhandled error in %s %s", request.method, request.path)
        rid = request_id.get()
        return json_response(
            {"error": {"code": "internal", "message": f"internal error, request id {rid}", "field": None}, "request_id": rid},
            status=500,
        )


def _client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


def _database_unavailable(request: web.Request, exc: Exception) -> web.Response:
    """503 with Retry-After: not the request's fault, and the database may be back by then."""
    log.warning("%s %s: database unreachable (%s)", request.method, request.path, type(exc).__name__)
    request.app[METRICS].database_error("request", unreachable=True)
    retry = request.app[CONFIG].database.retry_after_s
    return _error(DatabaseUnavailable(f"the database is unreachable; try again in {retry} s", retry_after_s=retry))


def bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    # Browsers cannot set headers on a websocket handshake; they pass the token as a query parameter.
    if request.headers.get("Upgrade", "").lower() == "websocket":
        return request.query.get("token") or None
    return None


@web.middleware
async def access(request: web.Request, handler: Handler) -> web.StreamResponse:
    endpoint = endpoint_of(request)
    if endpoint is None:
        # Unmatched paths fall through to a 404/405; every matched route is declared (checked at start-up).
        if request.match_info.http_exception is not None:
            raise request.match_info.http_exception
        raise Forbidden("route declares no access")
    if endpoint.public:
        return await handler(request)
    token = bearer_token(request)
    session = await sessions.resolve(request.app[POOL], token) if token else None
    if session is None:
        raise Unauthorized("a valid session token is required (Authorization: Bearer ...)")
    user = session.user
    if user.role not in endpoint.roles:
        raise Forbidden(f"role {user.role.value} may not use this route")
    request[USER] = user
    request[SESSION] = session
    return await handler(request)
