"""The UDP relay does what the weak-link media tests rely on: it relays both ways, delays, loses
(repeatably), holds a rate with a bounded queue, and changes its settings while traffic flows."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import cast

import pytest

from tests.impair.udp import UdpRelay


class Echo(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.transport.sendto(data, addr)


class Client(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.received: list[tuple[float, bytes]] = []

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received.append((time.monotonic(), data))


@pytest.fixture
async def echo() -> AsyncIterator[int]:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(Echo, local_addr=("127.0.0.1", 0))
    yield int(transport.get_extra_info("sockname")[1])
    transport.close()


async def client(relay: UdpRelay) -> tuple[asyncio.DatagramTransport, Client]:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(Client, remote_addr=("127.0.0.1", relay.port))
    return transport, protocol


async def until(predicate: object, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():  # type: ignore[operator]
            await asyncio.sleep(0.01)


async def test_relays_both_ways_with_the_delay_of_each_direction(echo: int) -> None:
    relay = UdpRelay(echo, delay_s=0.1)
    await relay.start()
    transport, received = await client(relay)
    try:
        sent_at = time.monotonic()
        transport.sendto(b"ping")
        await until(lambda: received.received)
        at, data = received.received[0]
        assert data == b"ping"
        assert at - sent_at >= 0.2  # 100 ms there and 100 ms back
    finally:
        transport.close()
        await relay.close()


async def test_loss_drops_that_share_of_datagrams_and_the_same_ones_for_the_same_seed(echo: int) -> None:
    runs = []
    for _ in range(2):
        relay = UdpRelay(echo, loss=0.2, seed=7)
        await relay.start()
        transport, received = await client(relay)
        try:
            for n in range(500):
                transport.sendto(n.to_bytes(2, "big"))
                await asyncio.sleep(0)
            await asyncio.sleep(0.3)
            runs.append([data for _, data in received.received])
            # Each direction drops 20 %: about 64 % come back.
            assert 0.55 * 500 < len(received.received) < 0.73 * 500
            assert relay.dropped == 500 - len(received.received)
        finally:
            transport.close()
            await relay.close()
    assert runs[0] == runs[1]


async def test_rate_paces_datagrams_and_a_full_queue_drops_the_rest(echo: int) -> None:
    relay = UdpRelay(echo, rate_bps=80_000, queue_s=0.5)  # 10 kB/s
    await relay.start()
    transport, received = await client(relay)
    try:
        start = time.monotonic()
        for _ in range(20):  # 20 kB at once: 0.5 s of queue holds 5 of them
            transport.sendto(bytes(1000))
        await asyncio.sleep(1.0)
        arrivals = [at - start for at, _ in received.received]
        assert len(arrivals) == 6  # the one in service and 5 queued; 14 dropped
        assert relay.dropped == 14
        assert arrivals[-1] >= 0.55  # paced at 0.1 s each
    finally:
        transport.close()
        await relay.close()


async def test_impair_changes_a_flowing_link_and_loss_one_is_a_dead_link(echo: int) -> None:
    relay = UdpRelay(echo)
    await relay.start()
    transport, received = await client(relay)
    try:
        transport.sendto(b"a")
        await until(lambda: len(received.received) == 1)
        relay.impair(loss=1.0)
        for _ in range(20):
            transport.sendto(b"b")
        await asyncio.sleep(0.2)
        assert len(received.received) == 1
        relay.impair(loss=0.0, delay_s=0.05)
        transport.sendto(b"c")
        await until(lambda: len(received.received) == 2)
        assert received.received[1][1] == b"c"
    finally:
        transport.close()
        await relay.close()
