"""The server's exception tree, and its mapping to HTTP statuses.

    ApiError                       a request that the server refuses, with a status
    ├── BadRequest            400  the body is not JSON, or not an object
    ├── Unauthorized          401  no valid session token
    ├── Forbidden             403  the role may not do this
    ├── NotFound              404
    ├── RequestTimeout        408  the request body stalled
    ├── Conflict              409  the state changed under the request
    │   ├── Stale                    made from an outdated view (code ``stale``)
    │   └── AlreadyAssigned          a further unit not asked for (code ``already_assigned``)
    ├── PayloadTooLarge       413
    ├── InvalidField          422  a field is missing or has an impossible value
    ├── RetryLater                 sent with Retry-After
    │   ├── TooManyRequests       429  rate limit
    │   └── DatabaseUnavailable   503  the database cannot be reached now
    └── InsufficientStorage   507  the disk is full

Handlers raise these; one middleware turns them into a JSON error body
``{"error": {"code", "message", "field"}}``. Anything else is a 500 with a
request id and a logged traceback, except the database-unreachable family
(`database_unreachable`), which is a `DatabaseUnavailable`.
"""

from __future__ import annotations

import errno
from typing import Any

import asyncpg

from dispatch.errors import (
    DispatchError,
    IllegalTransition,
    IncidentClosed,
    InvalidInput,
    MissingCapabilities,
    UnitsStillAssigned,
    UnknownUnit,
)
from signaling import errors as signaling


class ApiError(Exception):
    status = 500
    code = "internal"

    def __init__(
        self, message: str, *, field: str | None = None, extra: dict[str, Any] | None = None, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.extra = extra or {}
        if code is not None:  # a more specific code than the class's, for the pages to translate
            self.code = code

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message, "field": self.field}
        return {"error": error, **self.extra}


class BadRequest(ApiError):
    status = 400
    code = "bad_request"


class Unauthorized(ApiError):
    status = 401
    code = "unauthorized"


class Forbidden(ApiError):
    status = 403
    code = "forbidden"


class NotFound(ApiError):
    status = 404
    code = "not_found"


class Gone(ApiError):
    status = 410
    code = "gone"


class RequestTimeout(ApiError):
    status = 408
    code = "request_timeout"


class Conflict(ApiError):
    status = 409
    code = "conflict"


class Stale(Conflict):
    """The request was made from a view of the resource that is no longer current."""

    code = "stale"


class AlreadyAssigned(Conflict):
    """The incident already has a unit; another must be asked for explicitly."""

    code = "already_assigned"


class PayloadTooLarge(ApiError):
    status = 413
    code = "too_large"


class InvalidField(ApiError):
    status = 422
    code = "invalid"


class RetryLater(ApiError):
    """A refusal that a retry after ``retry_after_s`` may not meet (sent as ``Retry-After``)."""

    def __init__(self, message: str, *, retry_after_s: int | None = None) -> None:
        super().__init__(message, extra={"retry_after_s": retry_after_s} if retry_after_s is not None else None)
        self.retry_after_s = retry_after_s


class TooManyRequests(RetryLater):
    status = 429
    code = "rate_limited"


class DatabaseUnavailable(RetryLater):
    status = 503
    code = "database_unavailable"


class BadGateway(ApiError):
    """A service the request needed answered wrongly or not at all (SATUSEHAT)."""

    status = 502
    code = "bad_gateway"


class InsufficientStorage(ApiError):
    status = 507
    code = "insufficient_storage"


STORAGE_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})
# Refusals that mean "the database is not there right now", not "this request is wrong".
_UNREACHABLE = (
    asyncpg.InterfaceError,  # a closed pool or connection
    asyncpg.PostgresConnectionError,  # SQLSTATE class 08, a connection that no longer exists
    asyncpg.CannotConnectNowError,  # starting up or shutting down
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
    # A connection the server cut while a query was starting on it ("another operation is in progress").
    asyncpg.InternalClientError,
)


def database_unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` means the database cannot be reached now (a retry later may succeed)."""
    if isinstance(exc, _UNREACHABLE):
        return True
    # A socket error (refused, reset, a missing unix socket, a timeout) names no file; a file operation's error does.
    return isinstance(exc, OSError) and exc.filename is None and exc.errno not in STORAGE_FULL


def from_dispatch(exc: DispatchError) -> ApiError:
    """The HTTP meaning of a dispatch-domain refusal."""
    if isinstance(exc, InvalidInput):
        return InvalidField(exc.message, field=exc.field)
    if isinstance(exc, IllegalTransition):
        return Conflict(str(exc), field="status")
    if isinstance(exc, UnknownUnit):
        return NotFound(str(exc), field="unit_id")
    if isinstance(exc, MissingCapabilities):
        return InvalidField(str(exc), field="unit_id", extra={"missing_capabilities": list(exc.missing)})
    if isinstance(exc, UnitsStillAssigned):
        return Conflict(str(exc), field="status")
    if isinstance(exc, IncidentClosed):
        return Conflict(str(exc), field="incident_id")
    return Conflict(str(exc))


def from_signaling(exc: signaling.SignalingError) -> ApiError:
    """The HTTP meaning of a consult-domain refusal."""
    if isinstance(exc, (signaling.IllegalTransition, signaling.RoomClosed)):
        return Conflict(exc.reason, field=exc.field)
    if isinstance(exc, signaling.NotAMember):
        return Forbidden("not a member of this consult")
    if isinstance(exc, signaling.NotAllowed):
        return Forbidden(exc.reason, field=exc.field)
    if isinstance(exc, signaling.TokenRejected):
        return Unauthorized(exc.reason, field=exc.field)
    return InvalidField(exc.reason, field=exc.field)


def from_domain(exc: DispatchError | signaling.SignalingError) -> ApiError:
    """Either core's refusal as an API error: the one place domain errors meet HTTP."""
    return from_dispatch(exc) if isinstance(exc, DispatchError) else from_signaling(exc)
