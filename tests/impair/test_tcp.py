"""The link proxy does what the weak-link tests rely on: it relays, cuts with RST, blackholes silently, shapes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from tests.impair.tcp import LinkProxy


@pytest.fixture
async def echo() -> AsyncIterator[int]:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(4096):
            writer.write(data)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()


async def roundtrip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes, timeout: float = 2.0) -> bytes:
    writer.write(data)
    await writer.drain()
    return await asyncio.wait_for(reader.readexactly(len(data)), timeout)


async def test_relays_both_ways(echo: int) -> None:
    async with LinkProxy(echo) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        assert await roundtrip(reader, writer, b"hello" * 1000) == b"hello" * 1000
        writer.close()


async def test_cut_resets_open_connections_and_refuses_new_ones_until_restored(echo: int) -> None:
    async with LinkProxy(echo) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        assert await roundtrip(reader, writer, b"x") == b"x"
        proxy.cut()
        with pytest.raises(ConnectionResetError):
            await asyncio.wait_for(reader.read(1), 2)
        reader2, writer2 = await asyncio.open_connection("127.0.0.1", proxy.port)
        with pytest.raises(ConnectionResetError):
            await asyncio.wait_for(reader2.read(1), 2)
        proxy.restore()
        reader3, writer3 = await asyncio.open_connection("127.0.0.1", proxy.port)
        assert await roundtrip(reader3, writer3, b"back") == b"back"
        writer3.close()


async def test_blackhole_passes_nothing_and_says_nothing_then_delivers_in_order(echo: int) -> None:
    async with LinkProxy(echo) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        assert await roundtrip(reader, writer, b"a") == b"a"
        proxy.blackhole()
        writer.write(b"bc")
        await writer.drain()
        with pytest.raises(TimeoutError):  # no data, no FIN, no RST
            await asyncio.wait_for(reader.read(1), 0.5)
        late_reader, late_writer = await asyncio.open_connection("127.0.0.1", proxy.port)  # accepted, never answered
        late_writer.write(b"z")
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(late_reader.read(1), 0.5)
        proxy.restore()
        assert await asyncio.wait_for(reader.readexactly(2), 2) == b"bc"
        assert await asyncio.wait_for(late_reader.readexactly(1), 2) == b"z"
        writer.close()
        late_writer.close()


async def test_delay_and_rate_shape_the_link(echo: int) -> None:
    async with LinkProxy(echo, delay_s=0.1) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        start = time.monotonic()
        await roundtrip(reader, writer, b"p")
        assert time.monotonic() - start >= 0.2  # 100 ms each way
        writer.close()
    async with LinkProxy(echo, rate_bps=80_000) as proxy:  # 10 kB/s each way
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        start = time.monotonic()
        await roundtrip(reader, writer, b"r" * 5000, timeout=5)
        assert time.monotonic() - start >= 0.9  # 0.5 s out, 0.5 s back
        writer.close()
