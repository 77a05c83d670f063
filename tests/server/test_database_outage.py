"""A real fault: PostgreSQL stops under a running server. Every route that needs it answers
503 with Retry-After, the background loops log the outage once, and when PostgreSQL is back
everything works again without restarting the server."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator

import pytest

from server import demo_region
from server.embedded_db import EmbeddedDatabase
from signaling import handshake_join
from tests.conftest import Api, start_api
from tests.server.database_support import own_database
from tests.server.dispatch_support import call_body
from tests.server.process_support import Served, cli_env

HANDSHAKE_JOIN = json.dumps({"type": "join", "token": "A" * 43, "kind": "aiortc"})
UPGRADE = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
OUTAGE_S = 3.0


@pytest.fixture
async def database() -> AsyncIterator[tuple[EmbeddedDatabase, str]]:
    async with own_database() as stopped_by_this_test:
        yield stopped_by_this_test


async def _raw(api: Api, method: str, path: str, token: str | None = None, **kwargs: object) -> tuple[int, dict[str, str], object]:
    headers = dict(kwargs.pop("headers", {}))  # type: ignore[call-overload]
    if token:
        headers["Authorization"] = f"Bearer {token}"
    async with api.session.request(method, api.url(path), headers=headers, **kwargs) as r:  # type: ignore[arg-type]
        body = await r.json() if r.content_type == "application/json" else await r.text()
        return r.status, dict(r.headers), body


async def test_every_route_answers_503_and_everything_recovers(database: tuple[EmbeddedDatabase, str], caplog: pytest.LogCaptureFixture) -> None:
    embedded, dsn = database
    caplog.set_level(logging.INFO)
    api = await start_api(dsn)
    try:
        token = await api.login("operator")
        outage_started = len(caplog.records)  # the loops may see the outage while PostgreSQL is still stopping
        await asyncio.to_thread(embedded.halt)
        requests = {
            "public": ("POST", "/api/auth/login", None, {"json": {"username": "operator", "password": demo_region.DEMO_PASSWORD}}),
            "authenticated GET": ("GET", "/api/incidents", token, {}),
            "new call": ("POST", "/api/calls", token, {"json": call_body()}),
            "operator socket": ("GET", f"/ws/operator?token={token}", None, {"headers": UPGRADE}),
            "room socket": ("GET", f"/ws/consults/{uuid.uuid4()}", None, {"headers": UPGRADE}),
            "room socket, join in the handshake": ("GET", f"/ws/consults/{uuid.uuid4()}", None, {"headers": {
                **UPGRADE, "Sec-WebSocket-Protocol": ", ".join(handshake_join.offered(HANDSHAKE_JOIN))}}),
        }
        for kind, (method, path, session, extra) in requests.items():
            status, headers, body = await _raw(api, method, path, session, **extra)
            assert status == 503, (kind, status, body)
            assert headers["Retry-After"] == "5", kind
            assert isinstance(body, dict) and body["error"]["code"] == "database_unavailable", (kind, body)
            assert "database" in body["error"]["message"]
        status, _, _ = await _raw(api, "GET", "/healthz")
        assert status == 200  # the process itself is alive

        await asyncio.sleep(OUTAGE_S)  # six rounds of the acknowledgement sweep (every 0.5 s)
        during = [r for r in caplog.records[outage_started:] if r.name.startswith("server.")]
        sweep_lines = [r for r in during if "acknowledgement sweep" in r.getMessage()]
        assert 1 <= len(sweep_lines) <= 2, [r.getMessage() for r in sweep_lines]
        assert not any(r.exc_info for r in during), [r.getMessage() for r in during if r.exc_info]
        for loop in ("event bus", "room owner beat", "consult sweep"):
            assert len([r for r in during if r.getMessage().startswith(loop)]) <= 2, loop

        await asyncio.to_thread(embedded.resume)
        # No server restart: the pool replaces its dead connections, the first tries may still fail.
        for _ in range(50):
            status, _, created = await _raw(api, "POST", "/api/calls", token, json=call_body())
            if status != 503:
                break
            await asyncio.sleep(0.2)
        assert status == 201, created
        assert isinstance(created, dict)
        incident = created["incident"]["id"]
        unit = created["recommendations"][0]["unit_id"]
        status, assigned = await api.call("POST", f"/api/incidents/{incident}/dispatch", token, json={"unit_id": unit})
        assert status == 201, assigned
        for _ in range(50):
            if any("acknowledgement sweep: database reachable again" in r.getMessage() for r in caplog.records):
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the sweeper never said the database was back")
        status, _ = await api.call("GET", "/readyz")
        assert status == 200
    finally:
        await api.session.close()
        await api.server.close()


async def test_a_served_process_logs_the_outage_once_per_loop_and_no_traceback(database: tuple[EmbeddedDatabase, str]) -> None:
    """The whole log of a real ``psc119 serve`` through an outage: a line when it starts and one when it ends."""
    embedded, dsn = database
    stderr = embedded.pgdata.parent / "serve.log"  # beside the database, out of pytest's pruned basetemp
    served = await Served.start(["serve", "--port", "0"], cli_env(dsn), stderr)
    try:
        before = len(stderr.read_text())
        await asyncio.to_thread(embedded.halt)
        await asyncio.sleep(OUTAGE_S)
        await asyncio.to_thread(embedded.resume)
        for _ in range(100):
            if all(f"{loop}: database reachable again" in stderr.read_text() for loop in ("acknowledgement sweep", "event bus")):
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(stderr.read_text()[before:])
        await served.terminate()
    finally:
        await served.kill()
    log = stderr.read_text()[before:]
    assert "Traceback" not in log, log
    for loop in ("acknowledgement sweep", "event bus", "room owner beat", "consult sweep", "position flush"):
        lines = [line for line in log.splitlines() if f" {loop}: " in line]
        assert len(lines) <= 2, lines
