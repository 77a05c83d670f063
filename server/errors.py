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


def from_dispatch(exc: DispatchError) -> ApiError:
    """The HTTP meaning of a dispatch-domain refusal."""
    if isinstance(exc, InvalidInput):
        return InvalidField(exc.message, field=exc.field)
    if isinstance(exc, IllegalTransition):
        return Conflict(str(exc), field="status")
    if isinstance(exc, UnknownUnit):
        return NotFound(str(exc), field="unit_id")
    return Conflict(str(exc))
