"""A real coturn on loopback behind an impaired UDP link (`tests.impair.udp.UdpRelay`).

The app hands out ``turn:127.0.0.1:<relay port>`` with its REST credentials, so peers that
connect relay-only send every packet, media included, across the impaired link to coturn
and back.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from aioice.turn import create_turn_endpoint

from server.config import IceSettings
from signaling.turn import turn_credentials
from tests.impair.udp import UdpRelay
from tests.server.process_support import free_port
from tests.server.test_coturn import SECRET, TURNSERVER, loopback_config

RELAY_PORTS = 20  # coturn's relayed addresses: two per connection pair, and renegotiations


@dataclass
class TurnLink:
    relay: UdpRelay
    turnserver: asyncio.subprocess.Process
    log: Path

    @property
    def ice(self) -> IceSettings:
        return IceSettings(turn_urls=(f"turn:127.0.0.1:{self.relay.port}?transport=udp",), turn_secret=SECRET)

    async def close(self) -> None:
        await self.relay.close()
        if self.turnserver.returncode is None:
            self.turnserver.terminate()
        await self.turnserver.wait()


async def start_turn_link(directory: Path, **link: float | int | None) -> TurnLink:
    """coturn (``use-auth-secret``, loopback only) and the relay in front of it, with ``link``
    settings (see `UdpRelay`); returns once coturn answers."""
    port = free_port()
    relay_port = random.randrange(20_000, 30_000, RELAY_PORTS)
    conf = directory / "turnserver.conf"
    # The shipped config refuses loopback peers (a relay to the server itself); here both peers are on it.
    text = loopback_config(directory, port, relay_port, RELAY_PORTS)
    conf.write_text(text.replace("denied-peer-ip=127.0.0.0-127.255.255.255", "allow-loopback-peers"))
    turnserver = await asyncio.create_subprocess_exec(
        TURNSERVER, "-c", str(conf), stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    turn = TurnLink(UdpRelay(port, **link), turnserver, directory / "turn.log")
    await turn.relay.start()
    username, password, _ = turn_credentials(SECRET, "probe", datetime.now(UTC))
    for _ in range(100):  # until coturn grants an allocation
        try:
            transport, _ = await create_turn_endpoint(asyncio.DatagramProtocol, ("127.0.0.1", port), username, password)
            transport.close()
            return turn
        except (ConnectionError, TimeoutError, OSError):
            if turnserver.returncode is not None:
                raise AssertionError(turn.log.read_text() if turn.log.exists() else "coturn exited") from None
            await asyncio.sleep(0.1)
    await turn.close()
    raise AssertionError("coturn never answered")
