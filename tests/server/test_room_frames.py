"""A room connection writes the messages decided in one turn of the event loop in one write, in order, while its
client keeps up; behind a close, or for a client that has not read what was written, aiohttp's own send writes them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from server.room_frames import frame
from server.rooms import Connection
from signaling.ids import UserId

Scenario = Callable[[Connection, list[bytes]], Coroutine[Any, Any, None]]


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Scenario], Coroutine[Any, Any, list[str | int]]]]:
    """Run a scenario on the server side of one socket; what its client read (texts, then the close code)."""
    servers: list[TestServer] = []

    async def run(scenario: Scenario) -> list[str | int]:
        async def handler(request: web.Request) -> web.WebSocketResponse:
            ws = web.WebSocketResponse(compress=False)
            await ws.prepare(request)
            writes: list[bytes] = []
            transport = ws._writer.transport  # type: ignore[union-attr]
            write = transport.write
            transport.write = lambda data: (writes.append(bytes(data)), write(data))[1]  # type: ignore[method-assign]
            conn = Connection(ws, UserId("7"), 1)
            await scenario(conn, writes)
            await conn.finish()
            return ws

        app = web.Application()
        app.router.add_get("/ws", handler)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        read: list[str | int] = []
        async with aiohttp.ClientSession() as session, session.ws_connect(server.make_url("/ws")) as ws:
            async for msg in ws:
                read.append(msg.data)
            read.append(ws.close_code or 0)
        return read

    yield run
    for server in servers:
        await server.close()


async def test_messages_of_one_turn_leave_in_one_write_in_order(serve: Any) -> None:
    long = "x" * 70_000  # a frame with a 64-bit length

    async def scenario(conn: Connection, writes: list[bytes]) -> None:
        for text in ("satu", "dua" * 50, long):
            conn.send_text(text)
        await asyncio.sleep(0)
        assert writes == [frame("satu") + frame("dua" * 50) + frame(long)]
        conn.send_text("empat")
        await asyncio.sleep(0)
        assert writes[1:] == [frame("empat")]
        conn.close(4000, "replaced")

    assert await serve(scenario) == ["satu", "dua" * 50, long, "empat", 4000]


async def test_a_close_and_what_follows_it_keep_their_order(serve: Any) -> None:
    async def scenario(conn: Connection, writes: list[bytes]) -> None:
        conn.send_text("sebelum")
        conn.close(4409, "ended")
        conn.send_text("sesudah")  # after the close: never written

    assert await serve(scenario) == ["sebelum", 4409]


async def test_a_client_behind_on_its_reading_is_written_by_aiohttps_send(serve: Any) -> None:
    async def scenario(conn: Connection, writes: list[bytes]) -> None:
        transport = conn.ws._writer.transport  # type: ignore[union-attr]
        transport.get_write_buffer_size = lambda: 1  # type: ignore[method-assign]  # as when the kernel's buffer is full
        for n in range(3):
            conn.send_text(f"pesan {n}")
        await asyncio.sleep(0.05)
        assert writes == [frame(f"pesan {n}") for n in range(3)]  # one send_str each, through aiohttp's flow control
        del transport.get_write_buffer_size
        conn.close(1000, "")

    assert await serve(scenario) == ["pesan 0", "pesan 1", "pesan 2", 1000]
