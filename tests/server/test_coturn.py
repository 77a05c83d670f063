"""The shipped coturn configuration (deploy/coturn/turnserver.conf) grants a TURN allocation to the
credentials psc119 hands out, and refuses forged ones."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
from pathlib import Path

import pytest
from aioice import stun
from aioice.turn import create_turn_endpoint

from server.config import IceSettings
from tests.conftest import REPO, Api, start_api
from tests.server.nginx_support import render
from tests.server.process_support import free_port
from tests.server.test_consults import close_api, consult_config

TURNSERVER = "/usr/bin/turnserver"
SECRET = "a-secret-shared-by-psc119-and-coturn"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def loopback_config(directory: Path, port: int, relay_port: int, relay_ports: int = 1) -> str:
    return render(REPO / "deploy" / "coturn" / "turnserver.conf", {
        "listening-ip=0.0.0.0": "listening-ip=127.0.0.1\nrelay-ip=127.0.0.1",
        "listening-port=3478": f"listening-port={port}",
        "min-port=49160": f"min-port={relay_port}",
        "max-port=49999": f"max-port={relay_port + relay_ports - 1}",
        "static-auth-secret=CHANGE-ME-to-the-value-of-ice.turn_secret": f"static-auth-secret={SECRET}",
        "userdb=/var/lib/turn/turndb": f"userdb={directory / 'turndb'}",
        "pidfile=/run/turnserver/turnserver.pid": f"pidfile={directory / 'turnserver.pid'}",
        "log-file=syslog": f"log-file={directory / 'turn.log'}",
    })


async def allocate(port: int, username: str, password: str) -> tuple[str, int]:
    """The relayed address coturn allocates to these credentials."""
    transport, _ = await create_turn_endpoint(asyncio.DatagramProtocol, ("127.0.0.1", port), username, password)
    try:
        relayed: tuple[str, int] = transport.get_extra_info("sockname")
        return relayed
    finally:
        transport.close()


async def test_coturn_with_the_shipped_config_accepts_psc119_credentials_only(demo_dsn: str, tmp_path: Path) -> None:
    port, relay_port = free_port(), free_udp_port()
    conf = tmp_path / "turnserver.conf"
    conf.write_text(loopback_config(tmp_path, port, relay_port))
    config = consult_config(demo_dsn, tmp_path)
    ice = IceSettings(turn_urls=(f"turn:127.0.0.1:{port}?transport=udp",), turn_secret=SECRET)
    api: Api = await start_api(demo_dsn, dataclasses.replace(config, ice=ice))
    turnserver = await asyncio.create_subprocess_exec(
        TURNSERVER, "-c", str(conf), stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        status, body = await api.call("GET", "/api/ice-servers", await api.login("specialist"))
        assert status == 200, body
        [turn] = [s for s in body["ice_servers"] if s.get("username")]
        for _ in range(50):  # until coturn listens
            try:
                relayed = await allocate(port, turn["username"], turn["credential"])
                break
            except (ConnectionError, TimeoutError, OSError):
                assert turnserver.returncode is None, (tmp_path / "turn.log").read_text()
                await asyncio.sleep(0.1)
        else:
            raise AssertionError("coturn never answered")
        assert relayed == ("127.0.0.1", relay_port)
        with pytest.raises(stun.TransactionFailed) as refused:
            await allocate(port, turn["username"], "Zm9yZ2VkIGNyZWRlbnRpYWw=")
        assert refused.value.response.attributes["ERROR-CODE"][0] == 401
    finally:
        turnserver.terminate()
        await turnserver.wait()
        await close_api(api)
