"""A UDP relay on loopback whose link a test can impair: delay, rate, loss.

The kernel here has no netem, so a weak radio link is made in user space. The relay stands
in front of a real coturn: peers are given ``turn:127.0.0.1:<relay port>`` and every datagram
they exchange with coturn (allocations, permissions, and all media relayed through it) crosses
the relay. Each client address gets its own upstream socket, so coturn sees one 5-tuple per
client as it would without the relay.

Each client has its own link (its own radio bearer), and each direction of it is one
bottleneck; media between two clients through coturn crosses two links (the sender's up,
the receiver's down), so a path of 150 ms and 2 % loss is two links of 75 ms and 1 %:

- ``loss``: each datagram is dropped with this probability (a seeded `random.Random`, so a run
  can be repeated);
- ``rate_bps``: datagrams leave one after the other at this rate; the queue in front of the
  bottleneck holds at most ``queue_s`` seconds of traffic and drops what does not fit
  (drop-tail, as a radio bearer's buffer does);
- ``delay_s``: then each datagram travels this long.

`impair` changes the settings while traffic flows (a link that degrades or recovers);
``loss=1.0`` is a dead link.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast


@dataclass
class Lane:
    """One direction of the link: what is sent through it and when it may leave."""

    rng: random.Random
    sent: int = 0
    dropped: int = 0
    bytes_sent: int = 0
    _free_at: float = field(default=0.0, repr=False)

    def schedule(self, size: int, now: float, link: LinkSettings) -> float | None:
        """When a datagram of ``size`` bytes arriving at ``now`` comes out (None: dropped)."""
        if link.loss and self.rng.random() < link.loss:
            self.dropped += 1
            return None
        leave = now
        if link.rate_bps:
            start = max(now, self._free_at)
            if start - now > link.queue_s:
                self.dropped += 1
                return None
            leave = start + size * 8 / link.rate_bps
            self._free_at = leave
        self.sent += 1
        self.bytes_sent += size
        return leave + link.delay_s


@dataclass(frozen=True)
class LinkSettings:
    delay_s: float = 0.0
    rate_bps: int | None = None
    loss: float = 0.0
    queue_s: float = 0.5

    def __post_init__(self) -> None:
        if self.delay_s < 0 or not 0 <= self.loss <= 1 or self.queue_s <= 0:
            raise ValueError("delay_s >= 0, loss in 0..1 and queue_s > 0")
        if self.rate_bps is not None and self.rate_bps <= 0:
            raise ValueError("rate_bps must be positive (or None: unlimited)")


class _Side(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Callable[[bytes, tuple[str, int]], None]) -> None:
        self.on_datagram = on_datagram
        self.transport: asyncio.DatagramTransport | None = None
        self._waiting: list[bytes] = []  # what came out of the link before the socket was open

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)
        for data in self._waiting:
            transport.sendto(data)
        self._waiting.clear()

    def send(self, data: bytes) -> None:
        """To the connected address (an upstream side)."""
        if self.transport is None:
            self._waiting.append(data)
        elif not self.transport.is_closing():
            self.transport.sendto(data)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.on_datagram(data, addr)


class UdpRelay:
    """Relays datagrams between clients and ``target`` through an impaired link."""

    def __init__(self, target_port: int, *, target_host: str = "127.0.0.1", seed: int = 119, **settings: float | int | None) -> None:
        self.target = (target_host, target_port)
        self.settings = LinkSettings(**settings)  # type: ignore[arg-type]
        self._rng = random.Random(seed)
        self.lanes: dict[tuple[str, int], tuple[Lane, Lane]] = {}  # client → (up, down)
        self.port = 0
        self._front: _Side | None = None
        self._upstream: dict[tuple[str, int], _Side] = {}
        self._pending: set[asyncio.TimerHandle] = set()

    async def start(self) -> int:
        loop = asyncio.get_running_loop()
        _, front = await loop.create_datagram_endpoint(lambda: _Side(self._from_client), local_addr=("127.0.0.1", 0))
        self._front = front
        assert front.transport is not None
        self.port = int(front.transport.get_extra_info("sockname")[1])
        return self.port

    @property
    def dropped(self) -> int:
        return sum(up.dropped + down.dropped for up, down in self.lanes.values())

    @property
    def sent(self) -> int:
        return sum(up.sent + down.sent for up, down in self.lanes.values())

    def impair(self, **settings: float | int | None) -> None:
        """Change the link's settings from now on (unnamed settings keep their value)."""
        current = {name: getattr(self.settings, name) for name in ("delay_s", "rate_bps", "loss", "queue_s")}
        self.settings = LinkSettings(**{**current, **settings})  # type: ignore[arg-type]

    def _from_client(self, data: bytes, client: tuple[str, int]) -> None:
        side = self._upstream.get(client)
        if side is None:
            up, down = Lane(random.Random(self._rng.random())), Lane(random.Random(self._rng.random()))
            self.lanes[client] = (up, down)
            side = _Side(lambda d, _a: self._forward(down, d, lambda: self._to_client(d, client)))
            self._upstream[client] = side
            asyncio.get_running_loop().create_task(self._open_upstream(side))
        self._forward(self.lanes[client][0], data, lambda: side.send(data))

    async def _open_upstream(self, side: _Side) -> None:
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: side, remote_addr=self.target)

    def _to_client(self, data: bytes, client: tuple[str, int]) -> None:
        if self._front is not None and self._front.transport is not None and not self._front.transport.is_closing():
            self._front.transport.sendto(data, client)

    def _forward(self, lane: Lane, data: bytes, send: Callable[[], None]) -> None:
        loop = asyncio.get_running_loop()
        now = time.monotonic()
        at = lane.schedule(len(data), now, self.settings)
        if at is None:
            return
        if at <= now:
            send()
            return
        handle: asyncio.TimerHandle

        def fire() -> None:
            self._pending.discard(handle)
            send()

        handle = loop.call_at(loop.time() + (at - now), fire)
        self._pending.add(handle)

    async def close(self) -> None:
        for handle in self._pending:
            handle.cancel()
        self._pending.clear()
        for side in [*self._upstream.values(), self._front]:
            if side is not None and side.transport is not None:
                side.transport.close()
        self._upstream.clear()
