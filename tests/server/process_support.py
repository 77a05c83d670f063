"""Running the real ``psc119`` command as a process, for the tests that need one."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import re
import signal
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO

import aiohttp

from tests.conftest import PSC119, REPO, Api

CHEAP_ARGON2 = {"PSC119_AUTH_ARGON2_TIME_COST": "1", "PSC119_AUTH_ARGON2_MEMORY_KIB": "8192"}
SERVING = re.compile(r"^psc119 serving on (http://127\.0\.0\.1:\d+)$")


@dataclasses.dataclass
class Done:
    code: int
    out: str
    err: str


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli_env(dsn: str) -> dict[str, str]:
    return {**os.environ, **CHEAP_ARGON2, "PSC119_DATABASE_URL": dsn}


async def psc119(*args: str, env: dict[str, str], stdin: str = "", timeout: float = 30) -> Done:
    proc = await asyncio.create_subprocess_exec(
        *PSC119, *args, cwd=REPO, env=env,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin.encode()), timeout)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return Done(proc.returncode, out.decode(), err.decode())


@dataclasses.dataclass
class Served:
    proc: asyncio.subprocess.Process
    before: list[str]  # stdout lines printed before the serving line
    url: str
    stderr: IO[bytes]

    @classmethod
    async def start(cls, args: list[str], env: dict[str, str], stderr_path: Path, timeout: float = 60) -> Served:
        stderr = open(stderr_path, "wb")
        proc = await asyncio.create_subprocess_exec(
            *PSC119, *args, cwd=REPO, env=env,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=stderr,
        )
        served = cls(proc, [], "", stderr)
        try:
            assert proc.stdout is not None
            deadline = time.monotonic() + timeout
            while True:
                raw = await asyncio.wait_for(proc.stdout.readline(), max(0.1, deadline - time.monotonic()))
                if not raw:
                    code = await asyncio.wait_for(proc.wait(), 10)
                    raise AssertionError(f"serve exited early ({code}): {stderr_path.read_text()}")
                line = raw.decode().rstrip("\n")
                match = SERVING.match(line)
                if match:
                    served.url = match.group(1)
                    return served
                served.before.append(line)
        except BaseException:
            await served.kill()
            raise

    async def terminate(self, within: float = 10) -> None:
        """SIGTERM, and the process must exit within the given seconds."""
        self.proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(self.proc.wait(), within)
        self.stderr.close()

    async def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
            await asyncio.wait_for(self.proc.wait(), 10)
        self.stderr.close()


@dataclasses.dataclass
class Remote(Api):
    """The Api helpers, pointed at a server running in another process."""

    base: str = ""

    def url(self, path: str) -> str:
        return self.base + path


@contextlib.asynccontextmanager
async def two_processes(dsn: str, logs: Path) -> AsyncIterator[tuple[Remote, Remote]]:
    """Two ``psc119 serve`` processes on one database and a client for each; both must exit cleanly on SIGTERM."""
    servers: list[Served] = []
    session = aiohttp.ClientSession()
    try:
        for n in range(2):
            servers.append(await Served.start(["serve", "--port", "0"], cli_env(dsn), logs / f"serve{n}.log"))
        yield Remote(None, session, dsn, base=servers[0].url), Remote(None, session, dsn, base=servers[1].url)  # type: ignore[arg-type]
        for server in servers:
            await server.terminate()
    finally:
        await session.close()
        for server in servers:
            await server.kill()
