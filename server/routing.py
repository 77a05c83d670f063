"""Route declarations: every route says who may use it and what it accepts.

Handlers are registered through :class:`Routes`; the declaration feeds the
auth middleware (default deny), the body parser and the OpenAPI document.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import pydantic
from aiohttp import web

from server import db, strict_input
from server.errors import BadRequest, InvalidField, PayloadTooLarge
from server.roles import PUBLIC, Role

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Model = TypeVar("Model", bound=pydantic.BaseModel)
Choice = TypeVar("Choice", bound=enum.Enum)


@dataclasses.dataclass(frozen=True, slots=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    roles: frozenset[Role]
    summary: str
    body: type[pydantic.BaseModel] | None = None
    query: type[pydantic.BaseModel] | None = None
    tag: str = ""
    # Success statuses and the JSON Schema of each answer (server.api_schemas), for the OpenAPI document.
    returns: Mapping[int, dict[str, Any]] = dataclasses.field(default_factory=dict)

    @property
    def public(self) -> bool:
        return self.roles == PUBLIC


ENDPOINT_ATTR = "__psc119_endpoint__"


class Routes:
    """A module's routes, collected by decorator and added to an app in one call."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.endpoints: list[Endpoint] = []

    def route(
        self,
        method: str,
        path: str,
        *,
        roles: frozenset[Role],
        summary: str,
        body: type[pydantic.BaseModel] | None = None,
        query: type[pydantic.BaseModel] | None = None,
        returns: Mapping[int, dict[str, Any]] | None = None,
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            endpoint = Endpoint(method, path, handler, roles, summary, body, query, self.tag, returns or {})
            setattr(handler, ENDPOINT_ATTR, endpoint)
            self.endpoints.append(endpoint)
            return handler

        return register

    def add_to(self, app: web.Application) -> None:
        for e in self.endpoints:
            app.router.add_route(e.method, e.path, e.handler)


def endpoint_of(request: web.Request) -> Endpoint | None:
    handler = request.match_info.handler
    return getattr(handler, ENDPOINT_ATTR, None)


def _validation_error(exc: pydantic.ValidationError) -> InvalidField:
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or None
    message = first["msg"]
    if first["type"] == "missing":
        message = "is required"
    elif first["type"] == "extra_forbidden":
        message = "is not a known field"
    elif first["type"] == "value_error":
        message = str(first["ctx"]["error"])
    return InvalidField(message, field=field)


async def read_body(request: web.Request, model: type[Model]) -> Model:
    """Parse and validate a JSON body; 400 if it is not a JSON object, 422 naming the bad field.

    Validation is strict: a JSON value is never coerced to another type (``true`` is not a number).
    """
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLarge("body larger than the server's limit (server.max_body_bytes)") from None
    if request.content_type != "application/json":
        raise BadRequest("expected Content-Type: application/json")
    data = strict_input.loads(raw)
    if not isinstance(data, dict):
        raise BadRequest("body must be a JSON object")
    try:
        return model.model_validate(data, strict=True)
    except pydantic.ValidationError as exc:
        raise _validation_error(exc) from None


def read_query(request: web.Request, model: type[Model]) -> Model:
    try:
        return model.model_validate(dict(request.query))
    except pydantic.ValidationError as exc:
        raise _validation_error(exc) from None


def choice(kind: type[Choice], value: object, field: str) -> Choice:
    """``value`` as a member of the enum ``kind``; 422 naming ``field`` and listing the choices otherwise."""
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(str(m.value) for m in kind)
        raise InvalidField(f"must be one of: {allowed}", field=field) from None


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=dumps)


def dumps(data: Any) -> str:
    return db.dumps(data)
