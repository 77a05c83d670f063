"""The shipped deployment, run for real: nginx (deploy/nginx/psc119.conf) over TLS in front of two
``psc119 serve`` processes configured by deploy/systemd/psc119@.service, on one PostgreSQL over TCP."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import ipaddress
import json
import os
import re
import signal
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import websockets
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import REPO
from tests.server.database_support import tcp_database
from tests.server.process_support import Served, cli_env, free_port

NGINX = "/usr/sbin/nginx"
SITE = REPO / "deploy" / "nginx" / "psc119.conf"
UNIT = REPO / "deploy" / "systemd" / "psc119@.service"
# Which process served a response: the test's own nginx.conf adds it (the shipped site does not).
UPSTREAM = "X-Upstream"


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key; clients trust the certificate itself."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "psc119 test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return cert_path, key_path


def render(shipped: Path, replacements: dict[str, str]) -> str:
    """A shipped deploy/ file with a test's ports and paths in place of the example ones."""
    text = shipped.read_text()
    for old, new in replacements.items():
        assert text.count(old) == 1, f"{shipped.relative_to(REPO)} no longer holds {old!r} exactly once"
        text = text.replace(old, new)
    return text


def render_site(ports: tuple[int, int], https: int, http: int, cert: Path, key: Path, acme: Path) -> str:
    return render(SITE, {
        "server 127.0.0.1:8001 ": f"server 127.0.0.1:{ports[0]} ",
        "server 127.0.0.1:8002 ": f"server 127.0.0.1:{ports[1]} ",
        "listen 80;": f"listen 127.0.0.1:{http};",
        "listen 443 ssl;": f"listen 127.0.0.1:{https} ssl;",
        "/etc/letsencrypt/live/psc119.example.org/fullchain.pem": str(cert),
        "/etc/letsencrypt/live/psc119.example.org/privkey.pem": str(key),
        "root /opt/psc119/web;": f"root {REPO / 'web'};",
        "root /var/www/html;": f"root {acme};",
    })


def main_config(directory: Path, site: Path) -> str:
    """What Debian's /etc/nginx/nginx.conf is to the site, with every path inside ``directory``."""
    temp = "\n".join(f"    {kind}_temp_path {directory / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return f"""
{"user root;" if os.geteuid() == 0 else ""}
worker_processes 1;
pid {directory / 'nginx.pid'};
error_log {directory / 'error.log'} info;
events {{ worker_connections 1024; }}
http {{
    include /etc/nginx/mime.types;
    access_log {directory / 'access.log'};
{temp}
    add_header {UPSTREAM} $upstream_addr always;
    include {site};
}}
"""


def unit_environment(port: int) -> dict[str, str]:
    """The ``Environment=`` settings of the shipped systemd unit, for the instance ``psc119@port``."""
    found = re.findall(r"^Environment=(\w+)=(.*)$", UNIT.read_text(), re.MULTILINE)
    assert found, "deploy/systemd/psc119@.service sets no environment"
    return {name: value.replace("%i", str(port)) for name, value in found}


@dataclasses.dataclass
class Deployment:
    dsn: str
    processes: list[Served]
    ports: tuple[int, int]
    base: str  # https://127.0.0.1:PORT, nginx
    http_base: str  # http://127.0.0.1:PORT, nginx's plain-HTTP server
    tls: ssl.SSLContext
    nginx: asyncio.subprocess.Process

    def session(self, source: str = "127.0.0.1") -> aiohttp.ClientSession:
        return aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=self.tls, local_addr=(source, 0)))

    def wss(self, path: str) -> str:
        return self.base.replace("https://", "wss://") + path

    async def socket_on(self, port: int, path: str, **headers: str) -> websockets.ClientConnection:
        """A websocket through nginx that lands on the process at ``port`` (round robin: a few tries)."""
        for _ in range(6):
            ws = await websockets.connect(self.wss(path), ssl=self.tls, additional_headers=headers, open_timeout=10)
            assert ws.response is not None
            if served_by(ws.response.headers.get(UPSTREAM, "")) == port:
                return ws
            await ws.close()
        raise AssertionError(f"nginx never sent {path} to port {port}")

    async def steer(self, session: aiohttp.ClientSession, away_from: int) -> None:
        """Make nginx's next request go to the other process: round robin over two alternates."""
        for _ in range(6):
            async with session.get(self.base + "/healthz") as response:
                assert response.status == 200
                if served_by(response.headers[UPSTREAM]) == away_from:
                    return
        raise AssertionError(f"nginx never sent a request to port {away_from}")


def served_by(upstream: str) -> int:
    """The port of the process that answered (the last one nginx tried)."""
    return int(upstream.split(",")[-1].strip().rsplit(":", 1)[1])


async def request(session: aiohttp.ClientSession, method: str, url: str, token: str | None = None, **kwargs: Any) -> tuple[int, Any, int]:
    """Status, JSON body and the port of the process that answered."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with session.request(method, url, headers=headers, **kwargs) as response:
        body = await response.json() if response.content_type == "application/json" else await response.text()
        return response.status, body, served_by(response.headers[UPSTREAM])


async def receive(ws: websockets.ClientConnection, predicate: Any, timeout: float = 10) -> dict[str, Any]:
    """The first message matching ``predicate``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), max(0.01, deadline - loop.time())))
        if predicate(message):
            return message


@contextlib.asynccontextmanager
async def deployment(directory: Path, **env: str) -> AsyncIterator[Deployment]:
    """PostgreSQL over TCP, two psc119 processes as the systemd unit runs them, nginx in front."""
    ports = (free_port(), free_port())
    https, http, pg = free_port(), free_port(), free_port()
    cert, key = self_signed(directory)
    (directory / "acme").mkdir()
    site = directory / "psc119.conf"
    site.write_text(render_site(ports, https, http, cert, key, directory / "acme"))
    conf = directory / "nginx.conf"
    conf.write_text(main_config(directory, site))
    async with tcp_database(pg) as dsn:
        processes: list[Served] = []
        nginx = None
        nginx_out = open(directory / "nginx.out", "wb")
        try:
            for n, port in enumerate(ports):
                process_env = {
                    **cli_env(dsn), **unit_environment(port),
                    "PSC119_SERVER_VAR_DIR": str(directory / f"var{n}"),
                    "PSC119_SERVER_TRUSTED_PROXIES": "127.0.0.1/32",
                    "PSC119_SERVER_NODE_TTL_S": "2", **env,
                }
                processes.append(await Served.start(["serve"], process_env, directory / f"serve{n}.log"))
                assert processes[-1].url == f"http://127.0.0.1:{port}"
            nginx = await asyncio.create_subprocess_exec(
                NGINX, "-p", str(directory), "-c", str(conf), "-g", "daemon off;",
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=nginx_out,
            )
            tls = ssl.create_default_context(cafile=str(cert))
            deployed = Deployment(dsn, processes, ports, f"https://127.0.0.1:{https}", f"http://127.0.0.1:{http}", tls, nginx)
            await _until_serving(deployed, directory)
            yield deployed
        finally:
            if nginx is not None and nginx.returncode is None:
                nginx.send_signal(signal.SIGTERM)  # fast shutdown: a graceful one waits for open websockets
                await asyncio.wait_for(nginx.wait(), 10)
            nginx_out.close()
            for served in processes:
                await served.kill()


async def _until_serving(deployed: Deployment, directory: Path) -> None:
    async with deployed.session() as session:
        for _ in range(100):
            assert deployed.nginx.returncode is None, (directory / "error.log").read_text()
            with contextlib.suppress(aiohttp.ClientConnectionError):
                async with session.get(deployed.base + "/healthz") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.05)
    raise AssertionError("nginx did not come up")
