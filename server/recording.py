"""The consented recorder in the server: fills the room hub's recorder hooks.

When every doctor of a consult consents, the hub calls ``RECORDER_HOOK`` (see
`server.rooms`); `Recorders.start` gets a join token for the ``recorder``
member and starts ``python -m server.recorder_process`` (a
`signaling.recorder.ConsultRecorder` in a process of its own, so its video
encoding never stalls this server's event loop), writing
``<server.var_dir>/recordings/<consult id>-<UTC timestamp>.webm``. The token goes
to the child on its standard input; the child's last output line is its result. When the
recording ends (a doctor's bye, consent withdrawn, ``RECORDER_STOP_HOOK``, the
room closed, shutdown) the file is flushed and linked to the consult in
``consult_recordings`` (`server.rooms.add_recording`). Stopping sends SIGTERM,
on which the recorder flushes its file and reports.

The recorder reaches the room over the same websocket as any peer, at the local
address that room's websockets arrive on (recorded from the handshake by an
``on_response_prepare`` signal): the room lives in this process, so the
recorder must connect to this process and not through a load balancer.

One `cleanup_ctx` (`recorders_context`) stops and flushes every recording on
shutdown; it must come after the hub's, so it is torn down before the hub.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import logging
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

import signaling
from server.keys import CONFIG, POOL, RECORDER_HOOK, RECORDER_STOP_HOOK
from server.room_owners import local_url
from server.rooms import add_recording, issue_recorder_token
from signaling.peer import room_url
from signaling.recorder import SUFFIX

log = logging.getLogger(__name__)

ROOM_PATH = "/ws/consults/"
STOP_TIMEOUT_S = 10.0
# Where the packages are importable from, for ``python -m server.recorder_process``.
_SOURCE_ROOT = str(Path(signaling.__file__).resolve().parent.parent)


@dataclasses.dataclass(eq=False)
class _Running:
    process: asyncio.subprocess.Process
    task: asyncio.Task[None]


class Recorders:
    """The recordings running for this process, one per consult at most, each in
    a recorder process of its own (``python -m server.recorder_process``)."""

    def __init__(self, app: web.Application) -> None:
        self._app = app
        self._running: dict[str, _Running] = {}
        self._starting: set[str] = set()
        self.local_url: str | None = None  # http(s)://host:port the rooms are served on

    async def start(self, app: web.Application, consult_id: str) -> None:
        """RECORDER_HOOK: record ``consult_id`` unless that is already happening."""
        settings = app[CONFIG].recording
        if not settings.enabled or consult_id in self._running or consult_id in self._starting:
            return
        if self.local_url is None:
            log.error("cannot record consult %s: the rooms' address is not known yet", consult_id)
            return
        self._starting.add(consult_id)
        try:
            await self._start(app, consult_id, self.local_url)
        finally:
            self._starting.discard(consult_id)

    async def _start(self, app: web.Application, consult_id: str, base_url: str) -> None:
        settings = app[CONFIG].recording
        token = await issue_recorder_token(app, consult_id)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        directory = Path(app[CONFIG].server.var_dir).resolve() / "recordings"
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{consult_id}-{stamp}{SUFFIX}"
        command = [
            sys.executable, "-m", "server.recorder_process",
            "--room", room_url(base_url, consult_id), "--out", str(path),
            "--fps", str(settings.video_fps),
            "--log-level", app[CONFIG].server.log_level, "--log-format", app[CONFIG].server.log_format,
        ]  # fmt: skip
        for address in settings.ice_host_addresses:
            command += ["--ice-host", address]
        process = await asyncio.create_subprocess_exec(
            *command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, cwd=_SOURCE_ROOT
        )
        assert process.stdin is not None  # we asked for the pipe
        process.stdin.write(token.encode() + b"\n")  # never on the command line
        await process.stdin.drain()
        process.stdin.close()
        log.info("recorder process %d started for consult %s", process.pid, consult_id)
        task = asyncio.create_task(self._record(consult_id, process), name=f"recorder-{consult_id}")
        self._running[consult_id] = _Running(process, task)

    async def _record(self, consult_id: str, process: asyncio.subprocess.Process) -> None:
        try:
            out, _ = await process.communicate()
            lines = out.decode(errors="replace").strip().splitlines()
            result = json.loads(lines[-1]) if lines else {}
            if not result.get("admitted"):
                log.info("the recorder was not admitted to consult %s (exit %s)", consult_id, process.returncode)
                return
            await add_recording(
                self._app[POOL], consult_id, result["path"],
                dt.datetime.fromtimestamp(result["started_at"], dt.UTC),
                dt.datetime.fromtimestamp(result["ended_at"], dt.UTC),
                result["bytes"],
            )  # fmt: skip
        except Exception:
            log.exception("recording consult %s failed", consult_id)
        finally:
            self._running.pop(consult_id, None)

    async def stop(self, app: web.Application, consult_id: str) -> None:
        """RECORDER_STOP_HOOK: end ``consult_id``'s recording and wait until it is filed."""
        running = self._running.get(consult_id)
        if running is not None:
            await self._finish(running)

    async def _finish(self, running: _Running) -> None:
        if running.process.returncode is None:
            running.process.terminate()  # the recorder flushes its file and reports
        try:
            await asyncio.wait_for(asyncio.shield(running.task), STOP_TIMEOUT_S)
        except TimeoutError:
            log.error("recorder process %d did not stop in time: killed", running.process.pid)
            with contextlib.suppress(ProcessLookupError):
                running.process.kill()
            await running.task

    async def stop_all(self) -> None:
        await asyncio.gather(*(self._finish(r) for r in list(self._running.values())), return_exceptions=True)


RECORDERS = web.AppKey("recorders", Recorders)


async def _note_local_address(request: web.Request, response: web.StreamResponse) -> None:
    recorders = request.app.get(RECORDERS)
    if recorders is None or recorders.local_url is not None or not request.path.startswith(ROOM_PATH):
        return
    recorders.local_url = local_url(request)


async def recorders_context(app: web.Application) -> AsyncIterator[None]:
    """The cleanup_ctx of the recorders (after the room hub's)."""
    recorders = Recorders(app)
    app[RECORDERS] = recorders
    app[RECORDER_HOOK] = recorders.start
    app[RECORDER_STOP_HOOK] = recorders.stop
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            await recorders.stop_all()


def setup(app: web.Application) -> None:
    """Register the recorders with ``app`` (call from `create_app`, after the hub)."""
    app.on_response_prepare.append(_note_local_address)
    app.cleanup_ctx.append(recorders_context)
