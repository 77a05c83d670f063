"""The OpenAPI 3 document, built from the route declarations.

Every schema it names is in ``components.schemas``: pydantic's ``$defs`` (an enum
a model uses) are hoisted there and referenced as ``#/components/schemas/...``.
"""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Any

import pydantic

from server.routing import Endpoint

_PARAM = re.compile(r"\{(\w+)(?::[^}]*)?\}")
ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "field": {"type": ["string", "null"]},
            },
            "required": ["code", "message", "field"],
        }
    },
    "required": ["error"],
}
_REF = "#/components/schemas/{model}"


def openapi_path(path: str) -> str:
    return _PARAM.sub(lambda m: "{" + m.group(1) + "}", path)


def _model_schema(model: type[pydantic.BaseModel], schemas: dict[str, Any]) -> dict[str, Any]:
    """The model's JSON Schema, its ``$defs`` moved into ``schemas``."""
    schema = model.model_json_schema(ref_template=_REF)
    schemas.update(schema.pop("$defs", {}))
    return schema


def _response(status: int, schema: dict[str, Any]) -> dict[str, Any]:
    description = HTTPStatus(status).phrase
    if status == 101:
        return {"description": f"{description} (a websocket)"}
    if schema.get("x-file"):
        return {"description": description, "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _operation(e: Endpoint, schemas: dict[str, Any]) -> dict[str, Any]:
    responses = {str(status): _response(status, schema) for status, schema in sorted(e.returns.items())}
    responses["default"] = {"description": "Error", "content": {"application/json": {"schema": {"$ref": _REF.format(model="Error")}}}}
    op: dict[str, Any] = {
        "summary": e.summary,
        "operationId": e.handler.__name__,
        "tags": [e.tag],
        "x-roles": sorted(r.value for r in e.roles) if not e.public else ["public"],
        "responses": responses,
    }
    if not e.public:
        op["security"] = [{"bearer": []}]
    params = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}} for name in _PARAM.findall(e.path)
    ]
    if e.query is not None:
        schema = _model_schema(e.query, schemas)
        required = set(schema.get("required", []))
        for name, prop in schema.get("properties", {}).items():
            params.append({"name": name, "in": "query", "required": name in required, "schema": prop})
    if params:
        op["parameters"] = params
    if e.body is not None:
        schemas[e.body.__name__] = _model_schema(e.body, schemas)
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": _REF.format(model=e.body.__name__)}}},
        }
    return op


def build(endpoints: list[Endpoint], version: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {"Error": ERROR_SCHEMA}
    for e in endpoints:
        paths.setdefault(openapi_path(e.path), {})[e.method.lower()] = _operation(e, schemas)
    return {
        "openapi": "3.1.0",
        "info": {"title": "psc119", "version": version, "description": "PSC 119 dispatch and telemedicine API"},
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }
