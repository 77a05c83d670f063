"""The recorder process logs like the server: JSON lines when the server logs JSON, and it reports its
result on standard output when stopped."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

from tests.conftest import REPO


async def test_the_recorder_process_logs_json_and_reports_when_stopped(tmp_path: Path) -> None:
    # Nothing listens on this port: the recorder keeps trying to join and says so.
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server.recorder_process", "--room", "ws://127.0.0.1:9/ws/consults/c0ffee",
        "--out", str(tmp_path / "never.webm"), "--log-format", "json", "--log-level", "INFO",
        cwd=REPO, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdin and proc.stdout and proc.stderr
    try:
        proc.stdin.write(b"secret-join-token\n")
        await proc.stdin.drain()
        first = json.loads(await asyncio.wait_for(proc.stderr.readline(), 30))
        assert first["level"] == "WARNING" and "signaling connection failed" in first["message"], first
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 3  # stopped before the room admitted it
    assert json.loads(out.decode().splitlines()[-1]) == {"admitted": False}
    for line in err.decode().splitlines():
        json.loads(line)  # every line is JSON
    assert b"secret-join-token" not in err
    assert not (tmp_path / "never.webm").exists()
