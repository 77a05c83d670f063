"""A TCP proxy on loopback whose link a test can impair: cut it, blackhole it, slow it down.

The kernel here has no netem, so weak links are made in user space. Clients connect to the
proxy's port; each connection is relayed to the target. The test then:

- ``cut()``: every open connection is reset (RST, as when a phone loses its bearer) and new
  ones are refused until ``restore()``;
- ``blackhole()``: connections stay open but nothing passes either way, and new ones are
  accepted but never reach the target: no FIN, no RST, as when a link dies silently. Bytes
  sent meanwhile are held, not dropped, as TCP would retransmit them; ``restore()`` lets
  them through in order;
- ``delay_s`` (each way) and ``rate_bps`` (each way) shape every chunk, like a 3G bearer.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time

CHUNK = 16384


class LinkProxy:
    def __init__(self, target_port: int, *, target_host: str = "127.0.0.1", delay_s: float = 0.0, rate_bps: int | None = None) -> None:
        self.target = (target_host, target_port)
        self.delay_s = delay_s
        self.rate_bps = rate_bps
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._open = asyncio.Event()
        self._open.set()
        self._refusing = False

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cut(self) -> None:
        """Reset every connection now and refuse new ones until `restore`."""
        self._refusing = True
        self._open.set()
        for writer in list(self._writers):
            _reset(writer)
        self._writers.clear()

    def blackhole(self) -> None:
        """Pass nothing either way, silently, until `restore`."""
        self._refusing = False
        self._open.clear()

    def restore(self) -> None:
        self._refusing = False
        self._open.set()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            _reset(writer)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def __aenter__(self) -> LinkProxy:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        if self._refusing:
            _reset(client_writer)
            return
        self._writers.add(client_writer)
        try:
            await self._open.wait()  # a blackholed link never reaches the server
            if self._refusing or client_writer not in self._writers:
                _reset(client_writer)
                return
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            self._writers.discard(client_writer)
            _reset(client_writer)
            return
        self._writers.add(upstream_writer)
        pumps = [asyncio.create_task(self._pump(a, b)) for a, b in ((client_reader, upstream_writer), (upstream_reader, client_writer))]
        self._tasks.update(pumps)
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in pumps:
                task.cancel()
                self._tasks.discard(task)
            for writer in (client_writer, upstream_writer):
                self._writers.discard(writer)
                writer.close()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        sender = asyncio.create_task(self._send(queue, writer))
        try:
            while data := await reader.read(CHUNK):
                queue.put_nowait((time.monotonic() + self.delay_s, data))
            await queue.join()
        except OSError:
            pass
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender

    async def _send(self, queue: asyncio.Queue[tuple[float, bytes]], writer: asyncio.StreamWriter) -> None:
        free_at = 0.0  # when the rate-limited link has sent what it took so far
        while True:
            due, data = await queue.get()
            await self._open.wait()
            now = time.monotonic()
            if self.rate_bps:
                free_at = max(free_at, now) + len(data) * 8 / self.rate_bps
                due = max(due, free_at)
            if due > now:
                await asyncio.sleep(due - now)
            await self._open.wait()
            try:
                writer.write(data)
                await writer.drain()
            except OSError:
                return
            finally:
                queue.task_done()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST rather than FIN: linger 0."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    writer.close()
