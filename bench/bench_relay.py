"""Benchmark: the signaling relay, all rooms at once, against PeerJS's server; and stored chat against pure relay.

Runs a real ``psc119 serve`` (its own process, embedded PostgreSQL, the demo region) with ``--rooms`` accepted
consults, both doctors joined to each room. In every room at once, as a call starts: the doctor sends a 3 KB offer,
the specialist answers it with a 3 KB answer, each sends 10 ICE candidates to the other; then each sends the other
``--messages`` 120-byte messages (candidates), at most ``--window`` unanswered at a time per direction. The same
run, PeerJS's server from npm (`bench/peerjs.py`) relays the same payloads between as many pairs of clients
(``OFFER``/``ANSWER``/``CANDIDATE``), and so does the bare aiohttp relay of `bench/baseline_servers.py` (the
least an aiohttp server does to relay a frame: the floor of any relay built on it). Then psc119 again with the
120-byte messages sent as chat, which is stored before it is relayed. The same client code drives all four.
Prints each message's latency (send → received by the other side, p50/p99 ms), messages relayed per second and
the server's CPU time per message (steadier than either on a shared machine), with the ratios (relay against
PeerJS and the bare relay, stored chat against pure relay), and the client's own CPU per message: the client is
one process too, and no server is seen relaying faster than it sends and reads; asserts no timings. Without
Node.js, or when npm cannot install the package, the PeerJS rows say why.

    python bench/bench_relay.py [--rooms 100 500] [--messages 100] [--window 8] [--peerjs-dir DIR | --no-peerjs REASON]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import peerjs
import websockets
from dispatch_load import cpu_seconds, database_cpu_seconds
from results import Row, emit

from bench_support import baseline_server, consult_rooms, demo_server, migrated_database, percentile

CANDIDATES = 10
MESSAGE_BYTES = 120
SDP_BYTES = 3 * 1024
# Chat is limited to one a second per socket in production; the benchmark measures its cost, not the limit.
CHAT_UNLIMITED = {"PSC119_LIMITS_WS_CHAT_PER_S": "1000000", "PSC119_LIMITS_WS_CHAT_BURST": "1000000"}


def sdp(kind: str) -> str:
    """A browser-like session description of about ``SDP_BYTES``."""
    lines = ["v=0", "o=- 4611731400430051336 2 IN IP4 127.0.0.1", "s=-", "t=0 0", "a=group:BUNDLE 0 1",
             "a=msid-semantic: WMS stream", "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126",
             "c=IN IP4 0.0.0.0", "a=rtcp:9 IN IP4 0.0.0.0", "a=ice-ufrag:Zk3q", "a=ice-pwd:q1Xc9rR8sM4tB2vN7yU0pL5k",
             "a=fingerprint:sha-256 " + ":".join(["AB"] * 32), f"a=setup:{'actpass' if kind == 'offer' else 'active'}",
             "a=mid:0", "a=sendrecv", "a=rtcp-mux", "a=rtpmap:111 opus/48000/2", "a=fmtp:111 minptime=10;useinbandfec=1"]
    payload = 96
    while len("\r\n".join(lines)) < SDP_BYTES - 40:
        lines += [f"a=rtpmap:{payload} VP8/90000", f"a=rtcp-fb:{payload} goog-remb", f"a=rtcp-fb:{payload} nack pli"]
        payload += 1
    return "\r\n".join(lines) + "\r\n"


def candidate(size: int = 0) -> dict[str, Any]:
    """An ICE candidate; its psc119 frame is padded (an extension attribute) to ``size`` bytes when given."""
    value = "candidate:1 1 udp 1 10.0.0.1 9 typ host"
    if size:
        frame = len(json.dumps({"type": "candidate", "candidate": value + " x ", "sdpMid": "0", "sdpMLineIndex": 0}))
        value += " x " + "y" * max(1, size - frame)
    return {"candidate": value, "sdpMid": "0", "sdpMLineIndex": 0}


def chat_frame(n: int) -> str:
    """The ``n``th chat of a sender: its own id (as long as a UUID's 32 hex digits), ``MESSAGE_BYTES`` long in all."""
    chat_id = f"{n:032x}"
    return json.dumps({"type": "chat", "id": chat_id, "text": "x" * (MESSAGE_BYTES - len(json.dumps({"type": "chat", "id": chat_id, "text": ""})))})


@dataclasses.dataclass(frozen=True, slots=True)
class Script:
    """What one side of a pair sends: its description (offer or answer), its candidates, then its messages."""

    description: str
    candidates: list[str]
    messages: list[str]


@dataclasses.dataclass(frozen=True, slots=True)
class Pair:
    caller: websockets.ClientConnection
    callee: websockets.ClientConnection
    to_callee: Script
    to_caller: Script


@dataclasses.dataclass(frozen=True, slots=True)
class Run:
    latencies: list[float]  # ms, one a message
    rate: float  # messages a second
    server_cpu_us: float  # the server's CPU time per message
    client_cpu_us: float  # this client's
    database_cpu_us: float | None  # PostgreSQL's, for a server that stores


async def drive(pairs: list[Pair], window: int, relayed: Callable[[dict[str, Any]], bool], server: int,
                database: Path | None = None) -> Run:
    """Every pair's call at once (the callee answers once the offer arrives), relayed by the server of pid ``server``
    (storing in the embedded PostgreSQL under ``database``, if given)."""
    latencies: list[float] = []

    async def direction(sender: websockets.ClientConnection, receiver: websockets.ClientConnection, script: Script,
                        gate: asyncio.Event | None, first: asyncio.Event | None) -> None:
        frames = [script.description, *script.candidates, *script.messages]
        sent: list[float] = []
        room = asyncio.Semaphore(window)

        async def receive() -> None:
            try:
                for got in range(len(frames)):
                    while not relayed(json.loads(await receiver.recv())):
                        pass
                    latencies.append((time.perf_counter() - sent[got]) * 1000)
                    room.release()
                    if first is not None and got == 0:
                        first.set()
            finally:  # a socket the server closed fails the run rather than leave its sender waiting for room
                for _ in range(window):
                    room.release()
                if first is not None:
                    first.set()

        reader = asyncio.create_task(receive())
        if gate is not None:
            await gate.wait()
        for frame in frames:
            await room.acquire()
            if reader.done():
                break
            sent.append(time.perf_counter())
            await sender.send(frame)
        await asyncio.wait_for(reader, 120)

    def database_cpu() -> float:
        return 0.0 if database is None else database_cpu_seconds(database)

    started, server_cpu, client_cpu, db_cpu = time.perf_counter(), cpu_seconds([server]), time.process_time(), database_cpu()
    tasks = []
    for pair in pairs:
        offered = asyncio.Event()  # the callee has the offer: it answers
        tasks += [direction(pair.caller, pair.callee, pair.to_callee, None, offered),
                  direction(pair.callee, pair.caller, pair.to_caller, offered, None)]
    await asyncio.gather(*tasks)
    rate = len(latencies) / (time.perf_counter() - started)
    per_message = 1e6 / len(latencies)
    return Run(latencies, rate, (cpu_seconds([server]) - server_cpu) * per_message, (time.process_time() - client_cpu) * per_message,
               None if database is None else (database_cpu() - db_cpu) * per_message)


def psc119_script(kind: str, messages: int, chat: bool) -> Script:
    relayed = [chat_frame(n) for n in range(messages)] if chat else [json.dumps({"type": "candidate", **candidate(MESSAGE_BYTES)})] * messages
    return Script(json.dumps({"type": kind, "sdp": sdp(kind)}), [json.dumps({"type": "candidate", **candidate()})] * CANDIDATES, relayed)


async def psc119(rooms: int, messages: int, window: int, chat: bool) -> Run:
    async with demo_server("psc119-bench-relay-", CHAT_UNLIMITED) as server:
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
            pairs.append(Pair(ends[0], ends[1], psc119_script("offer", messages, chat), psc119_script("answer", messages, chat)))
        await asyncio.sleep(0.5)  # presence and the session start settle before the clock starts
        kinds = {"offer", "answer", "chat" if chat else "candidate"} | {"candidate"}
        try:
            return await drive(pairs, window, lambda m: m.get("type") in kinds, server.pid, server.root if chat else None)
        finally:
            for ws in sockets:
                await ws.close()


def peerjs_script(kind: str, dst: str, messages: int, message_type: str = "CANDIDATE") -> Script:
    def frame(type_: str, payload: dict[str, Any]) -> str:
        return json.dumps({"type": type_, "dst": dst, "payload": payload})

    return Script(frame(kind.upper(), {"sdp": {"type": kind, "sdp": sdp(kind)}, "type": "media"}),
                  [frame("CANDIDATE", {"candidate": candidate(), "type": "media"})] * CANDIDATES,
                  [frame(message_type, {"candidate": candidate(MESSAGE_BYTES), "type": "media"})] * messages)


async def relay_by_dst(open_peer: Callable[[str], Awaitable[websockets.ClientConnection]], pid: int, rooms: int,
                       messages: int, window: int, message_type: str = "CANDIDATE", database: Path | None = None) -> Run:
    """The same traffic through a server that relays each frame to the peer its ``dst`` names (PeerJS's, the bare
    aiohttp one), its peers' sockets opened by ``open_peer(id)``; the messages after the candidates of
    ``message_type`` (``CHAT``: stored by the bare aiohttp server before it relays them)."""
    pairs = []
    sockets = []
    for _ in range(rooms):
        ids = [uuid.uuid4().hex, uuid.uuid4().hex]
        ends = [await open_peer(peer_id) for peer_id in ids]
        sockets += ends
        pairs.append(Pair(ends[0], ends[1], peerjs_script("offer", ids[1], messages, message_type),
                          peerjs_script("answer", ids[0], messages, message_type)))
    try:
        return await drive(pairs, window, lambda m: m.get("type") in ("OFFER", "ANSWER", "CANDIDATE", message_type), pid, database)
    finally:
        for ws in sockets:
            await ws.close()


async def peerjs_relay(command: Path, rooms: int, messages: int, window: int) -> Run:
    async with peerjs.server(command) as (url, pid):
        async def open_peer(peer_id: str) -> websockets.ClientConnection:
            ws = await websockets.connect(f"{url}?key=peerjs&id={peer_id}&token={uuid.uuid4().hex[:10]}",
                                          max_queue=None, compression=None)
            opened = json.loads(await ws.recv())
            if opened.get("type") != "OPEN":
                raise RuntimeError(f"PeerJS refused: {opened}")
            return ws

        return await relay_by_dst(open_peer, pid, rooms, messages, window)


async def bare_relay(rooms: int, messages: int, window: int, stored: bool = False) -> Run:
    """The bare aiohttp relay; ``stored``: its messages committed to PostgreSQL before they are relayed."""
    async with contextlib.AsyncExitStack() as stack:
        root, dsn = await stack.enter_async_context(migrated_database("psc119-bench-stored-")) if stored else (None, None)
        url, pid = await stack.enter_async_context(baseline_server("notify" if stored else "forward", dsn))

        async def open_peer(peer_id: str) -> websockets.ClientConnection:
            return await websockets.connect(f"{url.replace('http://', 'ws://')}/ws/relay?id={peer_id}",
                                            max_queue=None, compression=None)

        return await relay_by_dst(open_peer, pid, rooms, messages, window, "CHAT" if stored else "CANDIDATE", root)


@dataclasses.dataclass(frozen=True, slots=True)
class Figures:
    p50: float
    p99: float
    rate: float
    cpu_us: float
    database_cpu_us: float | None


def summary(name: str, run: Run) -> Figures:
    figures = Figures(statistics.median(run.latencies), percentile(run.latencies, 99), run.rate, run.server_cpu_us, run.database_cpu_us)
    database = "" if run.database_cpu_us is None else f", PostgreSQL {run.database_cpu_us:5.1f} µs/msg"
    print(f"{name:<36} p50 {figures.p50:7.2f} ms  p99 {figures.p99:7.2f} ms  {run.rate:9.0f} msg/s  "
          f"server {run.server_cpu_us:5.1f} µs/msg, client {run.client_cpu_us:5.1f} µs/msg{database}  "
          f"({len(run.latencies)} messages)", flush=True)
    return figures


async def one_size(rooms: int, messages: int, window: int, command: Path | None, why: str) -> list[Row]:
    size = f"{rooms} rooms, offer/answer + {CANDIDATES} candidates + 2 × {messages} messages, window {window}"
    relay = summary(f"psc119 relay, {rooms} rooms", await psc119(rooms, messages, window, chat=False))
    theirs: Figures | None = None
    if command is not None:
        try:
            theirs = summary(f"PeerJS server, {rooms} rooms", await peerjs_relay(command, rooms, messages, window))
        except (RuntimeError, OSError, TimeoutError) as exc:
            why = f"PeerJS failed: {exc}"
            print(why)
    bare = summary(f"bare aiohttp relay, {rooms} rooms", await bare_relay(rooms, messages, window))
    chat = summary(f"psc119 stored chat, {rooms} rooms", await psc119(rooms, messages, window, chat=True))
    bare_stored = summary(f"bare aiohttp stored relay, {rooms} rooms", await bare_relay(rooms, messages, window, stored=True))
    name = f"PeerJS server ({peerjs.PACKAGE})"
    pure = "psc119 pure relay, same run"
    floor = "bare aiohttp relay (json.loads, send as received)"
    stored_floor = "bare aiohttp relay, messages committed first (batched)"
    return [
        Row(f"signaling relay p50 ({size})", relay.p50, theirs.p50 if theirs else None, name, "ms", why),
        Row(f"signaling relay p99 ({size})", relay.p99, theirs.p99 if theirs else None, name, "ms", why),
        Row(f"signaling relay throughput ({size})", relay.rate, theirs.rate if theirs else None, name, "msg/s", why),
        Row(f"signaling relay server CPU per message ({size})", relay.cpu_us, theirs.cpu_us if theirs else None, name, "µs", why),
        Row(f"signaling relay server CPU per message ({size})", relay.cpu_us, bare.cpu_us, floor, "µs"),
        Row(f"signaling relay throughput ({size})", relay.rate, bare.rate, floor, "msg/s"),
        # The least an aiohttp server spends against PeerJS: how far any aiohttp relay can go beyond PeerJS's rate.
        Row(f"bare aiohttp relay server CPU per message ({size})", bare.cpu_us, theirs.cpu_us if theirs else None, name, "µs", why),
        Row(f"stored chat p99 ({size}, chat messages)", chat.p99, relay.p99, pure, "ms"),
        Row(f"stored chat throughput ({size}, chat messages)", chat.rate, relay.rate, pure, "msg/s"),
        Row(f"stored chat server CPU per message ({size}, chat messages)", chat.cpu_us, relay.cpu_us, pure, "µs"),
        # The least a server that commits a message before relaying it does, against the least relay: how close to
        # the pure relay any stored chat can come on this machine and this database.
        Row(f"bare aiohttp stored relay p99 ({size}, messages committed first)", bare_stored.p99, bare.p99, floor, "ms"),
        Row(f"bare aiohttp stored relay throughput ({size}, messages committed first)", bare_stored.rate, bare.rate, floor, "msg/s"),
        Row(f"stored chat p99 ({size}, chat messages)", chat.p99, bare_stored.p99, stored_floor, "ms"),
        Row(f"stored chat server CPU per message ({size}, chat messages)", chat.cpu_us, bare_stored.cpu_us, stored_floor, "µs"),
        Row(f"stored chat PostgreSQL CPU per message ({size}, chat messages)", chat.database_cpu_us, bare_stored.database_cpu_us,
            stored_floor, "µs"),
    ]


async def main(sizes: list[int], messages: int, window: int, peerjs_dir: Path | None, missing: str | None) -> None:
    command: Path | None = None
    why = ""
    try:
        if missing is not None:
            raise RuntimeError(missing)
        command = peerjs.install(peerjs_dir or Path(tempfile.mkdtemp(prefix="psc119-bench-peerjs-")))
    except (RuntimeError, OSError, TimeoutError) as exc:
        why = f"PeerJS missing: {exc}"
        print(why)
    rows = []
    for rooms in sizes:
        rows += await one_size(rooms, messages, window, command, why)
    emit(*rows)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rooms", type=int, nargs="+", default=[100, 500], help="room counts, each a run of its own")
    parser.add_argument("--messages", type=int, default=100, help="120-byte messages each doctor sends after the candidates")
    parser.add_argument("--window", type=int, default=8, help="unanswered messages per direction")
    parser.add_argument("--peerjs-dir", type=Path, help="where PeerJS's server is (or is installed by npm)")
    parser.add_argument("--no-peerjs", metavar="REASON", help="why PeerJS's server could not be installed (by the runner)")
    args = parser.parse_args()
    asyncio.run(main(args.rooms, args.messages, args.window, args.peerjs_dir, args.no_peerjs))
