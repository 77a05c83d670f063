"""Benchmark: the signaling relay, rooms × messages, against PeerJS's server.

Runs a real ``psc119 serve`` (its own process, embedded PostgreSQL, the demo region) with ``--rooms`` accepted
consults, both doctors joined to each room; each doctor sends ``--messages`` ICE candidates to the other, at
most ``--window`` unanswered at a time per direction. Then, the same run, PeerJS's server from npm (`bench/peerjs.py`)
with as many pairs of clients sending the same candidates as ``CANDIDATE`` messages. The same client code drives
both. Prints each message's latency (send → received by the other side, p50/p99 ms) and messages relayed per
second, with the ratios; asserts no timings. Without Node.js, or when npm cannot install the package, the
PeerJS rows say why.

    python bench/bench_relay.py [--rooms 20] [--messages 100] [--window 8] [--peerjs-dir DIR | --no-peerjs REASON]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import peerjs
import websockets
from results import Row, emit

from bench_support import consult_rooms, demo_server, percentile

CANDIDATE = {"candidate": "candidate:842163049 1 udp 2122260223 127.0.0.1 54321 typ host generation 0",
             "sdpMid": "0", "sdpMLineIndex": 0}

Encode = Callable[[int], str]


async def drive(pairs: list[tuple[websockets.ClientConnection, websockets.ClientConnection, Encode, Encode]],
                messages: int, window: int, relayed: Callable[[dict[str, Any]], bool]) -> tuple[list[float], float]:
    """Both ends of every pair send ``messages`` to the other at once; (latencies in ms, messages per second)."""
    latencies: list[float] = []

    async def direction(sender: websockets.ClientConnection, receiver: websockets.ClientConnection, encode: Encode) -> None:
        sent: list[float] = []
        room = asyncio.Semaphore(window)

        async def receive() -> None:
            got = 0
            while got < messages:
                if relayed(json.loads(await receiver.recv())):
                    latencies.append((time.perf_counter() - sent[got]) * 1000)
                    got += 1
                    room.release()

        reader = asyncio.create_task(receive())
        for i in range(messages):
            await room.acquire()
            sent.append(time.perf_counter())
            await sender.send(encode(i))
        await asyncio.wait_for(reader, 60)

    started = time.perf_counter()
    # Each socket is read by one direction only: a's messages arrive at b, b's at a.
    await asyncio.gather(*(task for a, b, to_b, to_a in pairs for task in (direction(a, b, to_b), direction(b, a, to_a))))
    return latencies, len(latencies) / (time.perf_counter() - started)


async def psc119(rooms: int, messages: int, window: int) -> tuple[list[float], float]:
    async with demo_server("psc119-bench-relay-") as server:
        pairs = []
        sockets = []
        for url, pk_token, sp_token in await consult_rooms(server.url, rooms):
            ends = []
            for token in (pk_token, sp_token):
                ws = await websockets.connect(url, max_queue=None, compression=None)
                await ws.send(json.dumps({"type": "join", "token": token, "kind": "browser"}))
                welcome = json.loads(await ws.recv())
                if welcome["type"] != "welcome":
                    raise RuntimeError(f"join refused: {welcome}")
                ends.append(ws)
            sockets += ends
            message = json.dumps({"type": "candidate", **CANDIDATE})
            pairs.append((ends[0], ends[1], lambda i, m=message: m, lambda i, m=message: m))
        await asyncio.sleep(0.5)  # presence and the session start settle before the clock starts
        try:
            return await drive(pairs, messages, window, lambda m: m.get("type") == "candidate")
        finally:
            for ws in sockets:
                await ws.close()


async def peerjs_relay(command: Path, rooms: int, messages: int, window: int) -> tuple[list[float], float]:
    async with peerjs.server(command) as (url, _pid):
        pairs = []
        sockets = []
        for _ in range(rooms):
            ids = [uuid.uuid4().hex, uuid.uuid4().hex]
            ends = []
            for peer_id in ids:
                ws = await websockets.connect(f"{url}?key=peerjs&id={peer_id}&token={uuid.uuid4().hex[:10]}",
                                              max_queue=None, compression=None)
                opened = json.loads(await ws.recv())
                if opened.get("type") != "OPEN":
                    raise RuntimeError(f"PeerJS refused: {opened}")
                ends.append(ws)
            sockets += ends
            to_b = json.dumps({"type": "CANDIDATE", "dst": ids[1], "payload": {"candidate": CANDIDATE, "type": "data"}})
            to_a = json.dumps({"type": "CANDIDATE", "dst": ids[0], "payload": {"candidate": CANDIDATE, "type": "data"}})
            pairs.append((ends[0], ends[1], lambda i, m=to_b: m, lambda i, m=to_a: m))
        try:
            return await drive(pairs, messages, window, lambda m: m.get("type") == "CANDIDATE")
        finally:
            for ws in sockets:
                await ws.close()


def summary(name: str, latencies: list[float], rate: float) -> tuple[float, float, float]:
    p50, p99 = statistics.median(latencies), percentile(latencies, 99)
    print(f"{name:<28} p50 {p50:7.2f} ms  p99 {p99:7.2f} ms  {rate:9.0f} msg/s  ({len(latencies)} messages)")
    return p50, p99, rate


async def main(rooms: int, messages: int, window: int, peerjs_dir: Path | None, missing: str | None) -> None:
    ours = summary("psc119 rooms", *await psc119(rooms, messages, window))
    size = f"{rooms} rooms × 2 × {messages} candidates, window {window}"
    theirs: tuple[float, float, float] | None = None
    why = ""
    try:
        if missing is not None:
            raise RuntimeError(missing)
        command = peerjs.install(peerjs_dir or Path(tempfile.mkdtemp(prefix="psc119-bench-peerjs-")))
        theirs = summary("PeerJS server", *await peerjs_relay(command, rooms, messages, window))
    except (RuntimeError, OSError, TimeoutError) as exc:
        why = f"PeerJS missing: {exc}"
        print(why)
    name = f"PeerJS server ({peerjs.PACKAGE})"
    emit(
        Row(f"signaling relay p50 ({size})", ours[0], theirs and theirs[0], name, "ms", why),
        Row(f"signaling relay p99 ({size})", ours[1], theirs and theirs[1], name, "ms", why),
        Row(f"signaling relay throughput ({size})", ours[2], theirs and theirs[2], name, "msg/s", why),
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rooms", type=int, default=20)
    parser.add_argument("--messages", type=int, default=100, help="candidates each doctor sends")
    parser.add_argument("--window", type=int, default=8, help="unanswered messages per direction")
    parser.add_argument("--peerjs-dir", type=Path, help="where PeerJS's server is (or is installed by npm)")
    parser.add_argument("--no-peerjs", metavar="REASON", help="why PeerJS's server could not be installed (by the runner)")
    args = parser.parse_args()
    asyncio.run(main(args.rooms, args.messages, args.window, args.peerjs_dir, args.no_peerjs))
