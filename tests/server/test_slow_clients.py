"""Slow and greedy HTTP clients against a real ``psc119 serve``: half-sent requests are closed
after their deadline while everyone else is served, one address cannot hold more than its
share of connections, and the flood of identical errors they cause is logged once, with a count."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import websockets

from tests.server.process_support import Served, cli_env

HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
# A login that announces a 1000-byte body and sends 10 bytes of it.
HALF_BODY = (
    b"POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    b"Content-Length: 1000\r\n\r\n" + b'{"usernam:'
)
HALF_HEAD = b"POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le"

Raw = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def open_raw(url: str, data: bytes, source: str | None = None) -> Raw:
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port, local_addr=(source, 0) if source else None)
    writer.write(data)
    await writer.drain()
    return reader, writer


async def until_closed(reader: asyncio.StreamReader, timeout: float) -> bytes | None:
    """Everything the server sent before closing the connection; None if it was still open after ``timeout``."""
    data = b""
    try:
        async with asyncio.timeout(timeout):
            while chunk := await reader.read(65536):
                data += chunk
    except TimeoutError:
        return None
    except ConnectionResetError:
        pass
    return data


async def healthz(url: str, source: str | None = None) -> bytes | None:
    reader, writer = await open_raw(url, HEALTHZ, source)
    try:
        return await until_closed(reader, 5)
    finally:
        writer.close()


def close_all(conns: list[Raw]) -> None:
    for _, writer in conns:
        writer.close()


async def test_half_sent_requests_are_closed_after_their_deadline_while_others_are_served(demo_dsn: str, tmp_path: Path) -> None:
    env = {**cli_env(demo_dsn), "PSC119_LIMITS_HEADER_TIMEOUT_S": "1", "PSC119_LIMITS_BODY_TIMEOUT_S": "1",
           "PSC119_LIMITS_MAX_CONNECTIONS_PER_ADDRESS": "1000"}
    log_path = tmp_path / "serve.log"
    served = await Served.start(["serve", "--port", "0"], env, log_path)
    conns: list[Raw] = []
    try:
        heads = [await open_raw(served.url, HALF_HEAD) for _ in range(100)]
        bodies = [await open_raw(served.url, HALF_BODY) for _ in range(100)]
        conns = heads + bodies
        # Clients that give up halfway through their body: each one is an error in the handler reading it.
        for _ in range(40):
            _, writer = await open_raw(served.url, HALF_BODY)
            writer.close()
        answer = await healthz(served.url)
        assert answer is not None and answer.startswith(b"HTTP/1.1 200"), answer
        closed = await asyncio.gather(*(until_closed(reader, 10) for reader, _ in conns))
        assert [c is not None for c in closed] == [True] * 200, "a half-sent request was still open 10 s after its 1 s deadline"
        answer = await healthz(served.url)
        assert answer is not None and answer.startswith(b"HTTP/1.1 200"), answer
    finally:
        close_all(conns)
        await served.terminate()
    lines = log_path.read_text().splitlines()
    head_lines = [line for line in lines if "no complete request head within 1 s" in line]
    assert len(head_lines) == 2, head_lines
    assert head_lines[1].endswith("[repeated 99 more times in 60 s]")
    body_lines = [line for line in lines if "its request body stalled for 1 s" in line]
    assert len(body_lines) == 2, body_lines
    assert body_lines[1].endswith("[repeated 99 more times in 60 s]")
    # The clients that went away are no server error: one line, then one counting the others.
    assert not any("Traceback" in line or "unhandled error" in line for line in lines)
    gone = [line for line in lines if "POST /api/auth/login: the client went away" in line]
    assert len(gone) == 2 and gone[1].endswith("[repeated 39 more times in 60 s]"), gone


async def test_an_address_over_its_connection_cap_is_refused_while_another_is_served(demo_dsn: str, tmp_path: Path) -> None:
    env = {**cli_env(demo_dsn), "PSC119_LIMITS_MAX_CONNECTIONS_PER_ADDRESS": "20"}
    log_path = tmp_path / "serve.log"
    served = await Served.start(["serve", "--port", "0"], env, log_path)
    held: list[Raw] = []
    try:
        held = [await open_raw(served.url, b"") for _ in range(20)]
        # The 21st connection from 127.0.0.1 is closed at once, unanswered.
        assert await healthz(served.url) == b""
        # Another address is served meanwhile.
        answer = await healthz(served.url, source="127.0.0.2")
        assert answer is not None and answer.startswith(b"HTTP/1.1 200"), answer
        # Once the first address lets go of a connection, it is served again.
        close_all(held[:1])
        for _ in range(50):
            answer = await healthz(served.url)
            if answer:
                break
            await asyncio.sleep(0.05)
        assert answer is not None and answer.startswith(b"HTTP/1.1 200"), answer
    finally:
        close_all(held)
        await served.terminate()
    assert "refused a connection from 127.0.0.1: it holds 20 already (limits.max_connections_per_address)" in log_path.read_text()


async def test_slow_but_steady_clients_websockets_and_idle_keepalives_are_left_alone(demo_dsn: str, tmp_path: Path) -> None:
    env = {**cli_env(demo_dsn), "PSC119_LIMITS_HEADER_TIMEOUT_S": "1", "PSC119_LIMITS_BODY_TIMEOUT_S": "1"}
    served = await Served.start(["serve", "--port", "0"], env, tmp_path / "serve.log")
    try:
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{served.url}/api/auth/login", json={"username": "operator", "password": "demo119"}) as r:
                token = (await r.json())["token"]
        ws_url = served.url.replace("http://", "ws://") + f"/ws/events?token={token}"
        async with websockets.connect(ws_url) as ws:
            assert json.loads(await ws.recv())["type"] == "hello"
            await ws.send('{"type": "ping"}')  # bytes on an upgraded connection: not the head of a next request
            assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "pong"
            # A body trickling in slower than its 1 s deadline as a whole, but never silent for 1 s.
            body = json.dumps({"username": "operator", "password": "demo119"}).encode()
            head = (f"POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n").encode()
            reader, writer = await open_raw(served.url, head)
            for n in range(0, len(body), len(body) // 6 + 1):
                await asyncio.sleep(0.4)
                writer.write(body[n:n + len(body) // 6 + 1])
            answer = await reader.readuntil(b"\r\n\r\n")
            assert answer.startswith(b"HTTP/1.1 200"), answer
            # The same connection, idle longer than the head deadline between two requests, still serves.
            length = int(re.search(rb"Content-Length: (\d+)", answer, re.I).group(1))  # type: ignore[union-attr]
            await reader.readexactly(length)
            await asyncio.sleep(2)
            writer.write(HEALTHZ)
            assert (await until_closed(reader, 5) or b"").startswith(b"HTTP/1.1 200")
            writer.close()
            # The websocket, open for 3 s, far past the 1 s deadlines, still answers.
            await ws.send('{"type": "ping"}')
            assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "pong"
    finally:
        await served.terminate()
