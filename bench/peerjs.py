"""PeerJS's signaling server from npm, the baseline of psc119's signaling relay: installed into a directory at
bench time (only the npm registry is reached), run as a child process on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

PACKAGE = "peer@1.0.2"
PATH = "/myapp"


def install(target: Path) -> Path:
    """``npm install`` PeerJS's server into ``target``; its ``peerjs`` command, or RuntimeError saying why not."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise RuntimeError("Node.js/npm not installed")
    target.mkdir(parents=True, exist_ok=True)
    command = target / "node_modules" / ".bin" / "peerjs"
    if command.exists():
        return command
    done = subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error", "--prefix", str(target), PACKAGE],
        capture_output=True, text=True, timeout=300,
    )
    if done.returncode != 0 or not command.exists():
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"npm install {PACKAGE} failed: {last[:120]}")
    return command


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def server(command: Path) -> AsyncIterator[tuple[str, int]]:
    """A running PeerJS server: (the websocket URL prefix of its clients, its pid)."""
    port = _free_port()
    proc = await asyncio.create_subprocess_exec(
        str(command), "--host", "127.0.0.1", "--port", str(port), "--path", PATH,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            try:
                _reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            except OSError:
                await asyncio.sleep(0.05)
        else:
            raise RuntimeError("PeerJS server did not start")
        yield f"ws://127.0.0.1:{port}{PATH}/peerjs", proc.pid
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 30)
