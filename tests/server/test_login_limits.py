"""Login limits under real concurrency: atomic counting, no lock-out, the alert, the proxy rule, the hashing bound."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp.test_utils import TestServer

from server import demo_region
from server.app import create_app
from server.config import Config, ServerSettings
from server.keys import PASSWORDS
from server.login_limits import account_delay
from server.passwords import Passwords
from tests.conftest import Api, app_config
from tests.server.process_support import Served as Process
from tests.server.process_support import cli_env

RIGHT = demo_region.DEMO_PASSWORD


class CountingPasswords(Passwords):
    """Counts real argon2 checks; optionally holds each one until ``gate`` opens."""

    def __init__(self, config: Config, gate: threading.Event | None = None) -> None:
        super().__init__(config.auth)
        self.checked: list[str] = []
        self.gate = gate
        self._lock = threading.Lock()

    def verify_sync(self, stored: str | None, password: str) -> bool:
        with self._lock:
            self.checked.append(password)
        if self.gate is not None:
            self.gate.wait(30)
        return super().verify_sync(stored, password)


@dataclasses.dataclass
class Served:
    api: Api
    passwords: CountingPasswords
    sessions: dict[str, aiohttp.ClientSession]

    def from_address(self, source: str) -> aiohttp.ClientSession:
        """A client whose connections come from ``source`` (any 127.x.y.z works on loopback)."""
        if source not in self.sessions:
            self.sessions[source] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(source, 0), limit=0))
        return self.sessions[source]

    async def login(self, username: str, password: str, source: str = "127.0.0.1", **headers: str) -> tuple[int, Any, dict[str, str]]:
        body = {"username": username, "password": password}
        async with self.from_address(source).post(self.api.url("/api/auth/login"), json=body, headers=headers) as r:
            return r.status, await r.json(), dict(r.headers)


@pytest.fixture
async def serve(demo_dsn: str) -> AsyncIterator[Any]:
    started: list[Served] = []

    async def start(gate: threading.Event | None = None, server: ServerSettings | None = None, **auth: Any) -> Served:
        config = app_config(demo_dsn, **auth)
        if server is not None:
            config = dataclasses.replace(config, server=server)
        app = create_app(config, demo_dsn)
        app[PASSWORDS].close()
        passwords = app[PASSWORDS] = CountingPasswords(config, gate)
        test_server = TestServer(app, host="127.0.0.1", port=0)
        await test_server.start_server()
        served = Served(Api(test_server, aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)), demo_dsn), passwords, {})
        started.append(served)
        return served

    yield start
    for served in started:
        for session in served.sessions.values():
            await session.close()
        await served.api.session.close()
        await served.api.server.close()


async def test_parallel_guesses_on_one_account_check_at_most_the_limit_across_processes(
    serve: Any, con: asyncpg.Connection
) -> None:
    # Two app instances (two pools) on one database, like two server processes.
    first, second = await serve(login_max_failures=5), await serve(login_max_failures=5)
    guesses = [(first if i % 2 else second).login("operator", f"guess-{i}") for i in range(30)]
    flood = asyncio.gather(*guesses)
    # The right password joins the flood once five guesses are counted: it is refused while throttled.
    while (await con.fetchval("SELECT attempts FROM login_counters WHERE scope = 'pair'") or 0) < 5:
        await asyncio.sleep(0.005)
    right_status, right_body, right_headers = await first.login("operator", RIGHT)
    statuses = [status for status, _, _ in await flood]
    assert len(first.passwords.checked) + len(second.passwords.checked) == 5
    assert sorted(statuses) == [401] * 5 + [429] * 25
    assert right_status == 429 and right_body["error"]["code"] == "rate_limited"
    assert int(right_headers["Retry-After"]) > 0
    assert RIGHT not in first.passwords.checked + second.passwords.checked


async def test_an_attackers_failures_do_not_lock_the_operator_out(serve: Any) -> None:
    served = await serve(login_max_failures=5, login_delay_base_s=0.05, login_delay_max_s=0.2)
    for i in range(5):
        assert (await served.login("operator", f"guess-{i}", source="127.0.0.3"))[0] == 401
    assert (await served.login("operator", RIGHT, source="127.0.0.3"))[0] == 429
    # The real operator at another address, and another user behind the attacker's address, still get in.
    assert (await served.login("operator", RIGHT, source="127.0.0.2"))[0] == 200
    assert (await served.login("admin", RIGHT, source="127.0.0.3"))[0] == 200


async def test_one_address_spraying_many_accounts_is_stopped(serve: Any) -> None:
    served = await serve(login_address_max_failures=8)
    results = await asyncio.gather(*(served.login(f"user{i}", "guess", source="127.0.0.4") for i in range(20)))
    assert sorted(status for status, _, _ in results) == [401] * 8 + [429] * 12
    assert len(served.passwords.checked) == 8
    assert (await served.login("operator", RIGHT, source="127.0.0.5"))[0] == 200


def test_the_account_delay_doubles_from_the_limit_up_to_the_cap() -> None:
    settings = app_config("postgresql:///x", login_max_failures=3, login_delay_base_s=0.5, login_delay_max_s=3.0).auth
    assert [account_delay(n, settings) for n in range(8)] == [0, 0, 0, 0.5, 1.0, 2.0, 3.0, 3.0]


async def test_per_account_slowdown_grows_and_never_refuses_the_right_password(serve: Any) -> None:
    served = await serve(login_max_failures=2, login_delay_base_s=0.1, login_delay_max_s=0.4)
    waits = []
    # Each guess from a fresh address, so only the per-account counter grows.
    for i in range(6):
        started = time.monotonic()
        assert (await served.login("operator", f"guess-{i}", source=f"127.0.1.{i + 1}"))[0] == 401
        waits.append(time.monotonic() - started)
    expected = [0, 0, 0.1, 0.2, 0.4, 0.4]
    assert all(w >= e for w, e in zip(waits, expected, strict=True)), waits
    started = time.monotonic()
    assert (await served.login("operator", RIGHT, source="127.0.2.1"))[0] == 200
    assert time.monotonic() - started >= 0.4


async def test_an_attacked_account_alerts_the_admins_once_per_window(serve: Any, con: asyncpg.Connection) -> None:
    served = await serve(login_max_failures=3, login_delay_base_s=0.0)
    token = await served.api.login("admin")
    async with served.api.session.ws_connect(served.api.url("/ws/operator").replace("http", "ws", 1) + f"?token={token}") as ws:
        assert (await ws.receive_json(timeout=5))["type"] == "hello"
        await asyncio.gather(*(served.login("operator", "guess", source=f"127.0.3.{i + 1}") for i in range(9)))
        await asyncio.gather(*(served.login(f"nobody{i % 2}", "guess", source=f"127.0.4.{i + 1}") for i in range(9)))
        last = await con.fetchval("SELECT max(id) FROM events")
        alerts = []
        while True:
            message = await ws.receive_json(timeout=5)
            if message["type"] == "event" and message["event"] == "alert":
                alerts.append(message["data"])
            if message.get("id", 0) >= last:
                break
    assert alerts == [{"alert": "login_failures", "username": "operator", "failures": 3, "window_s": 900}]
    assert await con.fetchval("SELECT audience FROM events WHERE type = 'alert'") == ["role:admin"]


async def test_forwarded_for_is_believed_only_from_a_trusted_proxy(serve: Any, con: asyncpg.Connection) -> None:
    served = await serve(server=ServerSettings(trusted_proxies=("127.0.0.2/32",)), login_max_failures=3, login_delay_base_s=0.0)
    # Untrusted peer: the header is ignored, so changing it neither hides nor frees the attacker.
    for i in range(3):
        assert (await served.login("operator", "guess", source="127.0.0.1", **{"X-Forwarded-For": f"10.0.0.{i}"}))[0] == 401
    assert (await served.login("operator", RIGHT, source="127.0.0.1", **{"X-Forwarded-For": "10.0.0.99"}))[0] == 429
    # Trusted proxy: the right-most address it did not add itself is the client; a forged left part is skipped.
    via_proxy = {"X-Forwarded-For": "127.0.0.1, 203.0.113.7"}
    for _ in range(3):
        assert (await served.login("operator", "guess", source="127.0.0.2", **via_proxy))[0] == 401
    assert (await served.login("operator", RIGHT, source="127.0.0.2", **via_proxy))[0] == 429
    assert (await served.login("operator", RIGHT, source="127.0.0.2", **{"X-Forwarded-For": "198.51.100.4"}))[0] == 200
    rows = await con.fetch("SELECT action, address FROM audit_log WHERE action LIKE 'auth.%' ORDER BY id")
    assert [r["address"] for r in rows] == ["127.0.0.1"] * 4 + ["203.0.113.7"] * 4 + ["198.51.100.4"]


async def _until_answered(flood: list[asyncio.Future[Any]], count: int) -> None:
    while sum(f.done() for f in flood) < count:
        await asyncio.sleep(0.01)


async def test_a_flood_is_bounded_and_a_clean_login_goes_first(serve: Any) -> None:
    gate = threading.Event()
    served = await serve(gate=gate, argon2_threads=2, argon2_queue=16)
    gate.set()
    token = await served.api.login("operator")
    served.passwords.checked.clear()
    gate.clear()
    flood = [asyncio.ensure_future(served.login(f"user{i}", f"guess-{i}", source="127.0.0.6")) for i in range(100)]
    try:
        # Both hashing threads are held: 2 run, 16 wait, the other 82 are refused at once, and the loop still answers.
        await asyncio.wait_for(_until_answered(flood, 82), 30)
        assert len(served.passwords.checked) == 2
        assert [f.result()[0] for f in flood if f.done()] == [429] * 82
        assert (await served.api.call("GET", "/api/me", token))[0] == 200
        # A login from a clean address pushes the most suspect waiter out and goes to the head of the queue.
        real = asyncio.ensure_future(served.login("specialist", RIGHT, source="127.0.0.7"))
        await asyncio.wait_for(_until_answered(flood, 83), 30)
        assert len(served.passwords.checked) == 2
    finally:
        gate.set()
    assert (await real)[0] == 200
    statuses = [status for status, _, _ in await asyncio.gather(*flood)]
    assert (statuses.count(401), statuses.count(429)) == (2 + 15, 83)
    assert served.passwords.checked.index(RIGHT) == 2  # next after the two that were running


async def test_in_a_distributed_flood_the_usual_address_goes_first(serve: Any) -> None:
    gate = threading.Event()
    served = await serve(gate=gate, argon2_threads=1, argon2_queue=4)
    gate.set()
    assert (await served.login("operator", RIGHT, source="127.0.0.8"))[0] == 200  # the operator's console
    served.passwords.checked.clear()
    gate.clear()
    # Every guess from its own address: no address looks worse than another.
    flood = [asyncio.ensure_future(served.login(f"user{i}", f"guess-{i}", source=f"127.0.5.{i + 1}")) for i in range(20)]
    try:
        await asyncio.wait_for(_until_answered(flood, 20 - 1 - 4), 30)
        # Someone new is one more of equals and is refused at once, with a hint to retry;
        status, body, headers = await served.login("admin", RIGHT, source="127.0.0.9")
        assert (status, headers["Retry-After"], body["retry_after_s"]) == (429, "1", 1)
        # the operator at her usual console pushes a waiter out and goes next.
        real = asyncio.ensure_future(served.login("operator", RIGHT, source="127.0.0.8"))
        await asyncio.wait_for(_until_answered(flood, 20 - 1 - 4 + 1), 30)
    finally:
        gate.set()
    assert (await real)[0] == 200
    assert served.passwords.checked.index(RIGHT) == 1
    assert (await served.login("admin", RIGHT, source="127.0.0.9"))[0] == 200  # the refusal used up nothing


async def test_two_server_processes_together_check_at_most_the_limit(demo_dsn: str, con: asyncpg.Connection, tmp_path: Path) -> None:
    env = {**cli_env(demo_dsn), "PSC119_AUTH_LOGIN_MAX_FAILURES": "5", "PSC119_AUTH_ARGON2_QUEUE": "100"}
    servers = [await Process.start(["serve", "--port", "0"], env, tmp_path / f"serve{n}.log") for n in range(2)]
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    try:
        async def guess(i: int) -> int:
            body = {"username": "operator", "password": f"guess-{i}"}
            async with session.post(servers[i % 2].url + "/api/auth/login", json=body) as r:
                return r.status

        statuses = await asyncio.gather(*(guess(i) for i in range(40)))
        assert sorted(statuses) == [401] * 5 + [429] * 35
        # Every checked password left one auth.login_failed; the refused ones were never checked.
        actions = await con.fetch("SELECT action, count(*) AS n FROM audit_log WHERE action LIKE 'auth.%' GROUP BY action")
        assert {r["action"]: r["n"] for r in actions} == {"auth.login_failed": 5, "auth.login_blocked": 35}
    finally:
        await session.close()
        for server in servers:
            await server.kill()
