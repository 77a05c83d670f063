"""A socket's open life runs after its handler and the middlewares have returned (`server.upgraded`): what they
guarantee still holds for sockets, and what only the handshake needed is let go."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import json
import logging
import types

import aiohttp
import asyncpg
import pytest
import websockets
from aiohttp import ClientConnectionResetError, web

from server import unit_messages
from server.app import create_app
from server.client_address import client_address
from server.config import LimitSettings
from server.connections import GuardedRunner
from server.keys import METRICS, WEBSOCKETS
from server.live import _Socket
from server.logs import request_id
from tests.conftest import Api, app_config, start_api
from tests.server.dispatch_support import CREW_PASSWORD, Socket, crew_for, socket_url
from tests.server.test_metrics_endpoint import scrape, value


def coroutines_in(source: str) -> list[str]:
    """The names of the coroutines alive now whose code is in a file ending with ``source``."""
    return [o.cr_code.co_name for o in gc.get_objects() if type(o) is types.CoroutineType and o.cr_code.co_filename.endswith(source)]


def open_sockets(api: Api) -> int:
    return len(api.server.app[WEBSOCKETS])


async def phone_message_failing_with(
    api: Api, con: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch, error: Exception,
) -> tuple[Socket, list[tuple[logging.LogRecord, str]], float]:
    """A phone whose next message raises ``error`` in the server: the phone, every server record logged meanwhile
    (with the request id it was logged under), and the unreachable-database errors counted meanwhile."""

    def failing(raw: object, at: object) -> object:
        raise error

    monkeypatch.setattr(unit_messages, "parse", failing)
    logged: list[tuple[logging.LogRecord, str]] = []
    catcher = logging.Handler(logging.INFO)
    catcher.emit = lambda record: logged.append((record, request_id.get()))  # type: ignore[method-assign]
    unit = await con.fetchval("SELECT id FROM units ORDER BY id LIMIT 1")
    phone = await Socket.open(api, "/ws/unit", await api.login(await crew_for(con, unit), CREW_PASSWORD))
    assert open_sockets(api) == 1
    before = value(await scrape(api), "psc119_database_errors_total", source="request", kind="unreachable")
    logging.getLogger("server").addHandler(catcher)
    try:
        await phone.ws.send(json.dumps({"type": "ping"}))
        with pytest.raises(websockets.ConnectionClosed):
            await phone.next()
    finally:
        logging.getLogger("server").removeHandler(catcher)
    counted = value(await scrape(api), "psc119_database_errors_total", source="request", kind="unreachable") - before
    assert open_sockets(api) == 0
    assert value(await scrape(api), "psc119_websockets_open", kind="unit") == 0
    return phone, [(r, rid) for r, rid in logged if r.levelno >= logging.WARNING], counted


async def test_an_error_in_a_sockets_life_is_logged_with_its_request_id_and_closes_it_with_1011(
    api: Api, con: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch,
) -> None:
    phone, logged, counted = await phone_message_failing_with(api, con, monkeypatch, RuntimeError("a bug"))
    assert phone.ws.close_code == 1011
    ((record, rid),) = logged
    assert record.levelno == logging.ERROR and record.exc_info is not None and "a bug" in str(record.exc_info[1])
    assert len(rid) == 16  # the upgrade request's id, as every line its handler logged
    assert counted == 0


async def test_a_client_gone_while_its_socket_writes_is_no_error(api: Api, con: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    # What aiohttp raises when the socket writes (a pong) to a client that went away.
    _, logged, counted = await phone_message_failing_with(api, con, monkeypatch, ClientConnectionResetError("Cannot write to closing transport"))
    assert [record.getMessage() for record, _ in logged] == []
    assert counted == 0


async def test_a_socket_whose_database_is_unreachable_is_closed_to_try_again_and_counted(
    api: Api, con: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What a stopped PostgreSQL gives a new connection.
    phone, logged, counted = await phone_message_failing_with(api, con, monkeypatch, ConnectionRefusedError(111, "Connect call failed"))
    assert phone.ws.close_code == 1013  # try again later: the phone reconnects
    assert [(record.levelno, record.exc_info) for record, _ in logged] == [(logging.WARNING, None)]  # no traceback
    assert counted == 1


async def test_a_refused_upgrade_is_timed_and_answered_in_json_and_an_accepted_socket_is_not_timed(api: Api, con: asyncpg.Connection) -> None:
    async with api.session.get(api.url("/ws/unit?token=nope"), headers={"Upgrade": "websocket", "Connection": "Upgrade"}) as r:
        assert r.status == 401
        assert (await r.json())["error"]["code"] == "unauthorized"
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert len(r.headers["X-Request-Id"]) == 16
    unit = await con.fetchval("SELECT id FROM units ORDER BY id LIMIT 1")
    phone = await Socket.open(api, "/ws/unit", await api.login(await crew_for(con, unit), CREW_PASSWORD))
    await phone.ws.close()
    samples = await scrape(api)
    assert value(samples, "psc119_http_request_duration_seconds_count", route="/ws/unit", method="GET", status="401") == 1
    assert value(samples, "psc119_http_request_duration_seconds_count", route="/ws/unit", method="GET", status="101") == 0


async def test_an_open_socket_reads_its_forwarded_address_all_through_its_life(demo_dsn: str, con: asyncpg.Connection) -> None:
    config = app_config(demo_dsn)
    config = dataclasses.replace(config, server=dataclasses.replace(config.server, trusted_proxies=("127.0.0.1/32",)))
    api = await start_api(demo_dsn, config)
    try:
        unit = await con.fetchval("SELECT id FROM units ORDER BY id LIMIT 1")
        token = await api.login(await crew_for(con, unit), CREW_PASSWORD)
        headers = {"X-Forwarded-For": "198.51.100.7", "User-Agent": "phone/1.0 " + "x" * 500}
        async with websockets.connect(socket_url(api, "/ws/unit", token), additional_headers=headers) as ws:
            assert json.loads(await ws.recv())["type"] == "hello"
            (socket,) = api.server.app[WEBSOCKETS]
            request = socket._req
            assert request is not None
            # What the audit reads all through the socket's life (the crew's actions): the client behind the proxy.
            assert client_address(request) == "198.51.100.7"
            await ws.send(json.dumps({"type": "ping"}))
            assert json.loads(await ws.recv())["type"] == "pong"
    finally:
        await api.session.close()
        await api.server.close()


async def test_an_upgraded_connection_lets_go_of_its_parser_deadline_and_life_callable_and_still_serves_its_socket(demo_dsn: str) -> None:
    config = app_config(demo_dsn)
    app = create_app(config, demo_dsn)
    runner = GuardedRunner(app, LimitSettings(), shutdown_timeout=1.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        url = f"http://{host}:{port}"
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{url}/api/auth/login", json={"username": "operator", "password": "demo119"}) as r:
                token = (await r.json())["token"]
        async with websockets.connect(f"ws://{host}:{port}/ws/events?token={token}") as ws:
            assert json.loads(await ws.recv())["type"] == "hello"
            (socket,) = app[WEBSOCKETS]
            assert socket._req is not None
            protocol = socket._req.protocol
            assert protocol._parser is None and protocol._payload_parser is not None
            assert protocol._body is None  # type: ignore[attr-defined]
            assert protocol._timer is None  # type: ignore[attr-defined]  # no deadline left scheduled for a head
            # The life runs as a coroutine; the bound method that made it is not kept for the socket's life.
            assert not [o for o in gc.get_objects() if type(o) is types.MethodType and o.__func__ is _Socket.run]
            # It waits for its next frame in aiohttp's read itself, not through `async for`'s coroutine of its own.
            assert coroutines_in("aiohttp/web_ws.py") == ["receive"]
            for _ in range(3):
                await ws.send(json.dumps({"type": "ping"}))
                assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "pong"
        for _ in range(50):
            if not app[WEBSOCKETS]:
                break
            await asyncio.sleep(0.05)
        assert not app[WEBSOCKETS]
        assert app[METRICS].sockets.labels("events")._value.get() == 0
    finally:
        await runner.cleanup()


async def test_a_phone_closing_its_socket_is_offline_at_once_even_when_the_lost_connection_cancels_its_handler(
    api: Api, con: asyncpg.Connection,
) -> None:
    # The test server cancels a handler whose connection is lost (handler cancellation): the socket's end, which
    # closes the phone's presence, still runs to its end.
    console = await Socket.open(api, "/ws/operator", await api.login("operator"))
    unit = await con.fetchval("SELECT id FROM units ORDER BY id LIMIT 1")
    for _ in range(3):
        phone = await Socket.open(api, "/ws/unit", await api.login(await crew_for(con, unit), CREW_PASSWORD))
        online = await console.wait_for(lambda m: m.get("event") == "unit.phone")
        assert online["data"]["phone"]["connected"] is True
        await phone.close()
        offline = await console.wait_for(lambda m: m.get("event") == "unit.phone", timeout=5)
        assert offline["data"]["phone"]["connected"] is False
    assert await con.fetchval("SELECT count(*) FROM phone_sockets WHERE unit_id = $1 AND closed_at IS NULL", unit) == 0
    await console.close()
