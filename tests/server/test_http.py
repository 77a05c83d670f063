"""HTTP behaviour at the edge: JSON errors, limits, request ids, the OpenAPI document, probes."""

from __future__ import annotations

import asyncpg
from aiohttp import web

from server.app import create_app
from server.config import Config, ServerSettings
from server.keys import ENDPOINTS
from server.openapi import openapi_path
from server.roles import PUBLIC
from server.routing import Routes
from tests.conftest import Api, app_config, start_api


async def test_malformed_json_is_400_and_changes_nothing(api: Api, con: asyncpg.Connection) -> None:
    before = await con.fetchval("SELECT count(*) FROM audit_log")
    for data in (b"{not json", b"[1, 2]", b"\xff\xfe"):
        async with api.session.post(api.url("/api/auth/login"), data=data, headers={"Content-Type": "application/json"}) as r:
            assert r.status == 400
            body = await r.json()
            assert body["error"]["code"] == "bad_request"
    assert await con.fetchval("SELECT count(*) FROM audit_log") == before


async def test_missing_wrong_and_unknown_fields_are_422_naming_the_field(api: Api) -> None:
    cases = [
        ({"password": "x"}, "username", "is required"),
        ({"username": 5, "password": "x"}, "username", None),
        ({"username": "a", "password": "x", "role": "admin"}, "role", "is not a known field"),
        ({"username": "", "password": "x"}, "username", None),
    ]
    for payload, field, message in cases:
        status, body = await api.call("POST", "/api/auth/login", json=payload)
        assert status == 422, payload
        assert body["error"]["field"] == field
        if message:
            assert body["error"]["message"] == message


async def test_wrong_content_type_is_400(api: Api) -> None:
    async with api.session.post(api.url("/api/auth/login"), data="username=a") as r:
        assert r.status == 400


async def test_oversize_body_is_413(demo_dsn: str) -> None:
    config = app_config(demo_dsn)
    small = Config(server=ServerSettings(max_body_bytes=1024), database=config.database, auth=config.auth)
    client = await start_api(demo_dsn, small)
    try:
        status, body = await client.call("POST", "/api/auth/login", json={"username": "a" * 5000, "password": "x"})
        assert status == 413
        assert body["error"]["code"] == "too_large"
    finally:
        await client.session.close()
        await client.server.close()


async def test_unknown_route_and_wrong_method_are_json(api: Api) -> None:
    status, body = await api.call("GET", "/api/nope")
    assert status == 404 and body["error"]["code"] == "not_found"
    async with api.session.delete(api.url("/api/me")) as r:
        assert r.status == 405
        assert (await r.json())["error"]["code"] == "method_not_allowed"


async def test_every_response_carries_a_request_id(api: Api) -> None:
    async with api.session.get(api.url("/healthz")) as r:
        assert len(r.headers["X-Request-Id"]) == 16
    async with api.session.get(api.url("/api/me")) as r:
        assert r.status == 401 and len(r.headers["X-Request-Id"]) == 16


async def test_unhandled_error_is_500_with_request_id_and_leaks_nothing(demo_dsn: str, caplog) -> None:  # type: ignore[no-untyped-def]
    boom = Routes("test")

    @boom.route("GET", "/api/boom", roles=PUBLIC, summary="fails")
    async def fail(request: web.Request) -> web.Response:
        raise RuntimeError("secret internal detail")

    app = create_app(app_config(demo_dsn), demo_dsn)
    boom.add_to(app)
    import aiohttp
    from aiohttp.test_utils import TestServer

    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session, session.get(server.make_url("/api/boom")) as r:
            assert r.status == 500
            text = await r.text()
            rid = r.headers["X-Request-Id"]
        assert "secret" not in text and "Traceback" not in text
        assert rid in text
        assert any("secret internal detail" in (rec.exc_text or "") or rec.exc_info for rec in caplog.records)
    finally:
        await server.close()


async def test_openapi_lists_every_registered_route(api: Api) -> None:
    status, doc = await api.call("GET", "/api/openapi.json")
    assert status == 200
    assert doc["openapi"].startswith("3.")
    documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    app = api.server.app
    assert app is not None
    registered = set()
    for route in app.router.routes():
        if route.method == "HEAD":
            continue
        info = route.resource.get_info() if route.resource else {}
        pattern = info.get("path") or info.get("formatter")
        registered.add((route.method, openapi_path(pattern)))
    assert registered and registered <= documented
    assert {(e.method, openapi_path(e.path)) for e in app[ENDPOINTS]} == documented
    login = doc["paths"]["/api/auth/login"]["post"]
    assert login["requestBody"]["content"]["application/json"]["schema"]["$ref"] == "#/components/schemas/LoginBody"
    assert "security" not in login and doc["paths"]["/api/me"]["get"]["security"] == [{"bearer": []}]


async def test_readyz_is_503_when_a_migration_is_pending(api: Api, con: asyncpg.Connection) -> None:
    assert (await api.call("GET", "/readyz"))[0] == 200
    await con.execute("DELETE FROM schema_migrations WHERE version = 1")
    status, body = await api.call("GET", "/readyz")
    assert status == 503
    assert body["pending_migrations"] == ["0001_foundation.sql"]


async def test_static_files_cannot_escape_the_web_root(api: Api) -> None:
    for path in ("/..%2fpyproject.toml", "/%2e%2e/config.toml", "/../server/app.py"):
        async with api.session.get(api.url(path)) as r:
            assert r.status == 404, path
