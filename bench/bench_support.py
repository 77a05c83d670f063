"""What the benchmarks share: a migrated database on a temporary embedded PostgreSQL, a real server on it,
logins, percentiles and a process's resident memory."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import re
import shutil
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from server import audit, db, demo_region, migrate, users
from server.config import AuthSettings
from server.embedded_db import EmbeddedDatabase
from server.passwords import Passwords

REPO = Path(__file__).resolve().parent.parent


@contextlib.asynccontextmanager
async def migrated_database(prefix: str) -> AsyncIterator[tuple[Path, str]]:
    """(a temporary directory, the DSN of database ``bench`` migrated to the current schema); all removed after."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    embedded = EmbeddedDatabase(root)
    embedded.start()
    try:
        admin = await asyncpg.connect(embedded.dsn("postgres"))
        await admin.execute("CREATE DATABASE bench")
        await admin.close()
        dsn = embedded.dsn("bench")
        con = await db.connect(dsn)
        try:
            await migrate.migrate(con)
        finally:
            await con.close()
        yield root, dsn
    finally:
        embedded.stop()
        shutil.rmtree(root, ignore_errors=True)


SERVING = re.compile(r"^psc119 serving on (http://127\.0\.0\.1:\d+)$")
CHEAP_ARGON2 = {"PSC119_AUTH_ARGON2_TIME_COST": "1", "PSC119_AUTH_ARGON2_MEMORY_KIB": "8192"}
# Loopback benchmarks open many sockets from one address and send more than a person would.
UNLIMITED = {
    "PSC119_LIMITS_MAX_CONNECTIONS_PER_ADDRESS": "100000",
    "PSC119_LIMITS_WS_SIGNALING_PER_S": "1000000", "PSC119_LIMITS_WS_SIGNALING_BURST": "1000000",
    "PSC119_LIMITS_WS_STATUS_PER_S": "1000000", "PSC119_LIMITS_WS_STATUS_BURST": "1000000",
}


@dataclasses.dataclass(frozen=True, slots=True)
class Running:
    """A real ``psc119 serve`` process on 127.0.0.1 and the database it uses."""

    url: str
    pid: int
    dsn: str
    root: Path


@contextlib.asynccontextmanager
async def demo_database(prefix: str) -> AsyncIterator[tuple[Path, str]]:
    """`migrated_database` holding the demo region and its users."""
    async with migrated_database(prefix) as (root, dsn):
        con = await db.connect(dsn)
        try:
            await demo_region.load_demo(con, Passwords(AuthSettings(argon2_time_cost=1, argon2_memory_kib=8192)))
        finally:
            await con.close()
        yield root, dsn


async def start_psc119(args: list[str], env: dict[str, str]) -> tuple[asyncio.subprocess.Process, str]:
    """``psc119 serve --port 0 ARGS`` as its own process, once it serves: (the process, its URL)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server.cli", "serve", "--port", "0", *args, cwd=REPO, env=env,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    while True:
        line = (await asyncio.wait_for(proc.stdout.readline(), 120)).decode()
        if not line:
            raise RuntimeError(f"psc119 serve exited before serving ({await proc.wait()})")
        match = SERVING.match(line.strip())
        if match:
            return proc, match.group(1)


@contextlib.asynccontextmanager
async def serve(root: Path, dsn: str, env: dict[str, str] | None = None) -> AsyncIterator[Running]:
    """``psc119 serve`` as its own process on ``dsn`` (cheap password hashing, the socket limits lifted)."""
    full_env = {**os.environ, **CHEAP_ARGON2, **UNLIMITED, "PSC119_DATABASE_URL": dsn,
                "PSC119_SERVER_VAR_DIR": str(root / "var"), "PSC119_SERVER_LOG_LEVEL": "WARNING", **(env or {})}
    proc, url = await start_psc119([], full_env)
    try:
        yield Running(url, proc.pid, dsn, root)
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 30)


@contextlib.asynccontextmanager
async def demo_server(prefix: str, env: dict[str, str] | None = None) -> AsyncIterator[Running]:
    """`serve` on a fresh `demo_database`; stopped and removed after."""
    async with demo_database(prefix) as (root, dsn), serve(root, dsn, env) as running:
        yield running


async def login(url: str, username: str, password: str) -> str:
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{url}/api/auth/login", json={"username": username, "password": password}) as r:
            body = await r.json()
            if r.status != 200:
                raise RuntimeError(f"login {username}: {r.status} {body}")
            return str(body["token"])


def rss_kib(pid: int) -> int:
    """The resident memory of process ``pid``, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


@contextlib.asynccontextmanager
async def baseline_server(mode: str, dsn: str | None = None) -> AsyncIterator[tuple[str, int]]:
    """A server of `bench/baseline_servers.py` as its own process: (its URL, its pid)."""
    args = [sys.executable, str(REPO / "bench" / "baseline_servers.py"), mode, *(["--dsn", dsn] if dsn else [])]
    proc = await asyncio.create_subprocess_exec(*args, cwd=REPO, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode().strip()
        if not line.startswith("serving on "):
            raise RuntimeError(f"baseline {mode} did not start: {line!r}")
        yield line.removeprefix("serving on "), proc.pid
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 30)


async def consult_rooms(url: str, count: int) -> list[tuple[str, str, str]]:
    """``count`` consults of the demo's puskesmas doctor accepted by its specialist: (room URL, the doctor's join
    token, the specialist's)."""
    pk, sp = await login(url, "puskesmas", "demo119"), await login(url, "specialist", "demo119")
    patient = {"age": 58, "sex": "male", "chief_complaint": "nyeri dada", "question": "STEMI?"}
    rooms = []
    async with aiohttp.ClientSession() as http:

        async def post(path: str, token: str, body: dict[str, object] | None = None) -> dict[str, Any]:
            async with http.post(url + path, json=body, headers={"Authorization": f"Bearer {token}"}) as r:
                answer: dict[str, Any] = await r.json()
                if r.status not in (200, 201):
                    raise RuntimeError(f"{path}: {r.status} {answer}")
                return answer

        for _ in range(count):
            consult = (await post("/api/consults", pk, {
                "idempotency_key": uuid.uuid4().hex, "service": "tele_ekg", "specialty": "jantung",
                "urgency": "routine", "patient": patient,
            }))["consult"]["id"]
            await post(f"/api/consults/{consult}/accept", sp)
            pk_join = await post(f"/api/consults/{consult}/join", pk)
            sp_join = await post(f"/api/consults/{consult}/join", sp)
            room_url = url.replace("http://", "ws://") + pk_join["room_url"]
            rooms.append((room_url, str(pk_join["token"]), str(sp_join["token"])))
    return rooms


CREW_PASSWORD = "crew-pass-119"


async def add_crew(con: asyncpg.Connection, unit: str) -> str:
    """A field_team account bound to ``unit`` (password `CREW_PASSWORD`); its username."""
    username = f"crew-{unit}"
    passwords = Passwords(AuthSettings(argon2_time_cost=1, argon2_memory_kib=8192))
    await users.add_user(con, passwords, actor=audit.CLI, username=username, role="field_team",
                         password=CREW_PASSWORD, min_password_length=8, unit=unit)
    return username
