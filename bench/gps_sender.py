"""Many unit sockets sending GPS fixes at an aggregate rate, as a process of its own (the GPS benchmark's load).

Each socket is a bare websocket client on asyncio streams: the fix frames are built by hand (a zero mask
key, which RFC 6455 allows), so that the sender costs far less CPU than the server it loads. A socket whose
kernel send buffer is full (TCP pushes back: the server reads no faster) skips its fix; the skipped ones are
counted. The server's pings are answered, everything else it sends is read and dropped.

Reads the socket paths (one a line) from standard input; prints one JSON line when done:
``{"sent": N, "held_back": N, "closed": N}`` per step (closed: by the server), between ``start RATE``
and ``end RATE`` lines. A socket's n-th fix since it connected has its longitude ``n`` millionths of a degree
east of where it began, so a reader of the positions can tell how many of them the server has taken in.

    python bench/gps_sender.py URL --rates 5000,10000 --seconds 8 < paths
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import struct
import sys
import time
from urllib.parse import urlsplit

TICK_S = 0.02
PAUSE_S = 4.0  # between steps: the reader waits for the server to take in what it was sent
HELD_BACK_BYTES = 16 * 1024  # a socket with this much unsent is pushed back on: its fix waits for the next tick


def frame(opcode: int, payload: bytes) -> bytes:
    """A client frame, masked with the zero key (the payload stays as it is)."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return head + b"\0\0\0\0" + payload


class UnitSocket:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, lat: float, lon: float) -> None:
        self.reader, self.writer = reader, writer
        self.lat, self.lon = lat, lon
        self.seq = 0
        self.closed = False
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            while True:
                b1, b2 = await self.reader.readexactly(2)
                n = b2 & 0x7F
                if n == 126:
                    n = struct.unpack("!H", await self.reader.readexactly(2))[0]
                elif n == 127:
                    n = struct.unpack("!Q", await self.reader.readexactly(8))[0]
                payload = await self.reader.readexactly(n)
                opcode = b1 & 0x0F
                if opcode == 0x9:
                    self.writer.write(frame(0xA, payload))
                elif opcode == 0x8:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        self.closed = True

    def send_fix(self, now: float) -> bool:
        if self.closed:
            return False
        if self.writer.transport.get_write_buffer_size() > HELD_BACK_BYTES:
            return False
        self.seq += 1
        at = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1e6) % 1000000:06d}+00:00"
        body = b'{"type":"position","lat":%.6f,"lon":%.6f,"accuracy":5,"at":"%s"}' % (self.lat, self.lon + self.seq * 1e-6, at.encode())
        self.writer.write(frame(0x1, body))
        return True


async def connect(url: str, path: str, index: int) -> UnitSocket:
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port, limit=1 << 20)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 101"):
        raise RuntimeError(f"upgrade refused: {head.splitlines()[0]!r}")
    return UnitSocket(reader, writer, *start_of(index))


def start_of(index: int) -> tuple[float, float]:
    """Where socket ``index`` begins: (lat, lon), apart from every other, inside the demo region."""
    return -6.30 + (index % 100) * 1e-3, 106.70 + (index // 100) * 1e-2


async def main(url: str, paths: list[str], rates: list[float], seconds: float) -> None:
    sockets = []
    for i, path in enumerate(paths):
        sockets.append(await connect(url, path, i))
    print("connected", flush=True)
    await asyncio.sleep(1.0)  # the hellos are read and the server is idle again
    for rate in rates:
        print(f"start {rate:g}", flush=True)
        step = await send(sockets, rate, seconds)
        print(f"end {rate:g} {json.dumps(step)}", flush=True)
        await asyncio.sleep(PAUSE_S)
    for ws in sockets:
        ws.writer.close()
    await asyncio.gather(*(ws.task for ws in sockets), return_exceptions=True)


async def send(sockets: list[UnitSocket], rate: float, seconds: float) -> dict[str, int]:
    per_socket = rate / len(sockets)
    owed = [i / len(sockets) for i in range(len(sockets))]  # spread the sockets' fixes over the tick
    sent = held = 0
    started = time.perf_counter()
    last = started
    while (now := time.perf_counter()) - started < seconds:
        wall = time.time()
        for i, ws in enumerate(sockets):
            owed[i] += per_socket * (now - last)
            while owed[i] >= 1:
                owed[i] -= 1
                if ws.send_fix(wall):
                    sent += 1
                else:
                    held += 1
        last = now
        await asyncio.sleep(TICK_S)
    return {"sent": sent, "held_back": held, "closed": sum(ws.closed for ws in sockets)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("--rates", required=True, help="fixes a second, all sockets together, one step each")
    parser.add_argument("--seconds", type=float, required=True, help="of each step")
    args = parser.parse_args()
    lines = [line.strip() for line in sys.stdin if line.strip()]
    asyncio.run(main(args.url, lines, [float(r) for r in args.rates.split(",")], args.seconds))
