"""The server's exception tree, and its mapping to HTTP statuses.

    ApiError                   a request that the server refuses, with a status
    ├── BadRequest        400  the body is not JSON, or not an object
    ├── Unauthorized      401  no valid session token
    ├── Forbidden         403  the role may not do this
    ├── NotFound          404
    ├── Conflict          409  the state changed under the request
    ├── PayloadTooLarge   413
    ├── InvalidField      422  a field is missing or has an impossible value
    └── TooManyRequests   429  rate limit

Handlers raise these; one middleware turns them into a JSON error body
``{"error": {"code", "message", "field"}}``. Anything else is a 500 with a
request id and a logged traceback.
"""

from __future__ import annotations

from typing import Any

from dispatch.errors import DispatchError, IllegalTransition, InvalidInput, UnknownUnit
from signaling import errors as signaling


class ApiError(Exception):
    status = 500
    code = "internal"

    def __init__(self, message: str, *, field: str | None = None, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.extra = extra or {}

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


class Conflict(ApiError):
    status = 409
    code = "conflict"


class PayloadTooLarge(ApiError):
    status = 413
    code = "too_large"


class InvalidField(ApiError):
    status = 422
    code = "invalid"


class TooManyRequests(ApiError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after_s: int | None = None) -> None:
        super().__init__(message, extra={"retry_after_s": retry_after_s} if retry_after_s is not None else None)
        self.retry_after_s = retry_after_s


def from_dispatch(exc: DispatchError) -> ApiError:
    """The HTTP meaning of a dispatch-domain refusal."""
    if isinstance(exc, InvalidInput):
        return InvalidField(exc.message, field=exc.field)
    if isinstance(exc, IllegalTransition):
        return Conflict(str(exc), field="status")
    if isinstance(exc, UnknownUnit):
        return NotFound(str(exc), field="unit_id")
    return Conflict(str(exc))


def from_signaling(exc: signaling.SignalingError) -> ApiError:
    """The HTTP meaning of a consult-domain refusal."""
    if isinstance(exc, (signaling.IllegalTransition, signaling.RoomClosed)):
        return Conflict(exc.reason, field=exc.field)
    if isinstance(exc, signaling.NotAMember):
        return Forbidden("not a member of this consult")
    if isinstance(exc, signaling.TokenRejected):
        return Unauthorized(exc.reason, field=exc.field)
    return InvalidField(exc.reason, field=exc.field)


def from_domain(exc: DispatchError | signaling.SignalingError) -> ApiError:
    """Either core's refusal as an API error: the one place domain errors meet HTTP."""
    return from_dispatch(exc) if isinstance(exc, DispatchError) else from_signaling(exc)
