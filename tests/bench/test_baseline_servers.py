"""The relay benchmark's stored floor does what its rows say: a chat frame reaches its peer only once it is committed,
in the order it was sent, and other frames are relayed without being stored."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import aiohttp
import asyncpg
from aiohttp.test_utils import TestServer

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import baseline_servers  # noqa: E402


async def test_the_stored_relay_commits_each_chat_before_relaying_it_in_order(empty_dsn: str) -> None:
    server = TestServer(baseline_servers.make_app("notify", empty_dsn), host="127.0.0.1", port=0)
    await server.start_server()
    con = await asyncpg.connect(empty_dsn)
    try:
        async with aiohttp.ClientSession() as http:
            sender = await http.ws_connect(server.make_url("/ws/relay?id=a"))
            receiver = await http.ws_connect(server.make_url("/ws/relay?id=b"))
            frames = [json.dumps({"type": "CHAT", "dst": "b", "n": n}) for n in range(300)]
            for frame in frames:
                await sender.send_str(frame)
            for frame in frames:
                got = await receiver.receive_str(timeout=10)
                assert got == frame
                assert await con.fetchval("SELECT count(*) FROM bench_chat WHERE body = $1", got) == 1
            await sender.send_str(json.dumps({"type": "CANDIDATE", "dst": "b"}))
            assert json.loads(await receiver.receive_str(timeout=10))["type"] == "CANDIDATE"
            assert await con.fetchval("SELECT count(*) FROM bench_chat") == len(frames)
            await sender.close()
            await receiver.close()
    finally:
        await con.close()
        await server.close()
