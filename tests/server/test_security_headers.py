"""Security headers on every response: pages, vendored files, API JSON, errors and websocket handshakes alike."""

from __future__ import annotations

import dataclasses

import pytest

from server.config import ConfigError, ServerSettings, WebSettings
from server.security_headers import content_security_policy
from tests.conftest import Api, app_config, start_api

EVERY_RESPONSE = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def directives(policy: str) -> dict[str, list[str]]:
    parsed = {}
    for part in policy.split(";"):
        name, *sources = part.split()
        parsed[name] = sources
    return parsed


async def test_every_kind_of_response_carries_the_headers(api: Api) -> None:
    token = await api.login("operator")
    requests = [
        ("GET", "/", None), ("GET", "/operator.html", None), ("GET", "/js/api.js", None), ("GET", "/vendor/leaflet/leaflet.css", None),
        ("GET", "/api/web-config", None), ("GET", "/healthz", None), ("GET", "/api/units", token),
        ("GET", "/api/units", None),  # 401
        ("GET", "/api/no-such-route", None),  # 404
        ("DELETE", "/api/web-config", None),  # 405
        ("GET", "/ws/operator?after=x", token),  # refused before the upgrade
    ]
    for method, path, auth in requests:
        headers = {"Authorization": f"Bearer {auth}"} if auth else {}
        async with api.session.request(method, api.url(path), headers=headers) as r:
            for name, value in EVERY_RESPONSE.items():
                assert r.headers.get(name) == value, (method, path, r.status, name)
            policy = directives(r.headers["Content-Security-Policy"])
            assert policy["frame-ancestors"] == ["'none'"] and policy["default-src"] == ["'self'"], (path, policy)
            assert "camera=(self)" in r.headers["Permissions-Policy"] and "geolocation=(self)" in r.headers["Permissions-Policy"]
            assert "Strict-Transport-Security" not in r.headers, path  # plain HTTP unless configured
    async with api.session.ws_connect(api.url(f"/ws/operator?token={token}")) as ws:
        assert (await ws.receive_json())["type"] == "hello"
        # The handshake answer carries them too (aiohttp keeps the response on the client side).
        assert ws._response.headers["X-Content-Type-Options"] == "nosniff"


async def test_the_policy_admits_this_origin_and_the_configured_tile_host_only(api: Api) -> None:
    async with api.session.get(api.url("/operator.html")) as r:
        policy = directives(r.headers["Content-Security-Policy"])
    # No inline script or style, no eval, no plugin, no other origin to talk to.
    assert policy["script-src"] == ["'self'"] and policy["style-src"] == ["'self'"] and policy["connect-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"] and policy["base-uri"] == ["'none'"]
    assert policy["img-src"] == ["'self'", "https://tile.openstreetmap.org", "data:"]  # the default web.tile_url
    for tile_url, images in (
        ("https://{s}.tiles.example.org/{z}/{x}/{y}.png", ["'self'", "https://*.tiles.example.org", "data:"]),
        ("http://127.0.0.1:8800/osm/{z}/{x}/{y}.png", ["'self'", "http://127.0.0.1:8800", "data:"]),
        ("/tiles/{z}/{x}/{y}.png", ["'self'"]),
        ("", ["'self'"]),
    ):
        config = dataclasses.replace(app_config(api.dsn), web=WebSettings(tile_url=tile_url))
        assert directives(content_security_policy(config))["img-src"] == images, tile_url
    with pytest.raises(ConfigError, match="web.tile_url"):
        content_security_policy(dataclasses.replace(app_config(api.dsn), web=WebSettings(tile_url="https://tiles.{s}.org/{z}/{x}/{y}.png")))


async def test_hsts_only_when_configured_behind_tls(demo_dsn: str) -> None:
    config = dataclasses.replace(app_config(demo_dsn), server=ServerSettings(hsts_max_age_s=31536000))
    client = await start_api(demo_dsn, config)
    try:
        for path in ("/", "/api/web-config", "/api/units"):
            async with client.session.get(client.url(path)) as r:
                assert r.headers["Strict-Transport-Security"] == "max-age=31536000", path
    finally:
        await client.session.close()
        await client.server.close()

