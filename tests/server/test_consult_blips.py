"""A consult's call outlives its signaling: two real aiortc doctors through the real app, with the room
sockets of one or both going through a link the test cuts (RST) or blackholes (silence). The media runs
peer to peer, so it must keep flowing (no gap over 1 s in the frames each side decodes) while the sockets
reconnect, and the pair must not be renegotiated. A kiosk (``psc119 peer --session-file``) whose join
token expired gets a new one by itself."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest

from signaling.media import SyntheticSource
from signaling.peer import ConsultPeer
from signaling.tokens import token_digest
from tests.conftest import PSC119, REPO, Api, start_api
from tests.impair.tcp import LinkProxy
from tests.server.blip_support import FrameClock
from tests.server.test_consult_media import LOOPBACK, Room, media_config, member, open_room
from tests.server.test_consults import close_api
from tests.signaling.room_relay import run_peers, stop_peers

MAX_GAP_S = 1.0


@pytest.fixture
async def mapi(demo_dsn: str, tmp_path: Path) -> AsyncIterator[Api]:
    client = await start_api(demo_dsn, media_config(demo_dsn, tmp_path))
    yield client
    await close_api(client)


@pytest.fixture
async def link(mapi: Api) -> AsyncIterator[LinkProxy]:
    async with LinkProxy(urlsplit(mapi.url("/")).port or 0) as proxy:
        yield proxy


def doctor(room: Room, who: str, url: str, clock: FrameClock) -> ConsultPeer:
    join = room.puskesmas if who == "puskesmas" else room.specialist
    return ConsultPeer(url, str(join["token"]), source=SyntheticSource(160, 120), ice_host_addresses=LOOPBACK, frame_sink=clock.sink)


def via(link: LinkProxy, room: Room) -> str:
    return f"ws://127.0.0.1:{link.port}/ws/consults/{room.consult_id}"


async def test_media_keeps_flowing_through_a_10_s_signaling_cut(mapi: Api, link: LinkProxy) -> None:
    room = await open_room(mapi)
    clocks = FrameClock(), FrameClock()
    ani, budi = doctor(room, "puskesmas", via(link, room), clocks[0]), doctor(room, "specialist", via(link, room), clocks[1])
    pk_id, sp_id = member(room, "puskesmas"), member(room, "specialist")
    tasks = await run_peers(ani, budi)
    try:
        await ani.wait_until(lambda: ani.stats.video_from(sp_id) >= 10 and budi.stats.video_from(pk_id) >= 10, 10)
        pcs = ani.peer_connections[sp_id], budi.peer_connections[pk_id]
        negotiations = ani.stats.negotiations + budi.stats.negotiations
        start = time.monotonic()
        link.cut()  # both room sockets reset, and no new one gets through
        await asyncio.sleep(10)
        link.restore()
        await ani.wait_until(lambda: ani.stats.joins == 2 and budi.stats.joins == 2, 10)
        await asyncio.sleep(1)
        end = time.monotonic()
        gaps = clocks[0].longest_gap(start, end), clocks[1].longest_gap(start, end)
        assert max(gaps) < MAX_GAP_S, gaps
        assert (ani.peer_connections[sp_id], budi.peer_connections[pk_id]) == pcs  # the very same connections
        assert ani.stats.negotiations + budi.stats.negotiations == negotiations  # nothing renegotiated
        assert ani.connected_to(sp_id) and budi.connected_to(pk_id)
        # Signaling works again: a chat crosses the new sockets.
        await ani.send_chat("Masih terdengar, dok?")
        await budi.wait_until(lambda: len(budi.chats) == 1, 5)
    finally:
        await stop_peers([ani, budi], tasks)


async def test_a_blackholed_room_socket_is_noticed_within_10_s_on_both_ends(mapi: Api, link: LinkProxy) -> None:
    room = await open_room(mapi)
    clocks = FrameClock(), FrameClock()
    ani = doctor(room, "puskesmas", via(link, room), clocks[0])
    budi = doctor(room, "specialist", room.url, clocks[1])  # direct
    pk_id, sp_id = member(room, "puskesmas"), member(room, "specialist")
    tasks = await run_peers(ani, budi)
    try:
        await ani.wait_until(lambda: ani.stats.video_from(sp_id) >= 10 and budi.stats.video_from(pk_id) >= 10, 10)
        start = time.monotonic()
        link.blackhole()  # no FIN, no RST: only a heartbeat can tell
        await ani.wait_until(lambda: ani.websocket is None, 12)
        client_noticed = time.monotonic() - start
        await budi.wait_until(lambda: pk_id in budi.reconnecting, 12)
        server_noticed = time.monotonic() - start
        assert pk_id in budi.present  # reconnecting, not left
        link.restore()
        await ani.wait_until(lambda: ani.stats.joins == 2 and pk_id not in budi.reconnecting, 15)
        end = time.monotonic()
        assert client_noticed < 10 and server_noticed < 10, (client_noticed, server_noticed)
        gaps = clocks[0].longest_gap(start, end), clocks[1].longest_gap(start, end)
        assert max(gaps) < MAX_GAP_S, gaps
    finally:
        await stop_peers([ani, budi], tasks)


class Output:
    """The lines a ``psc119 peer`` process prints, read as they come."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            self.lines.append(line.decode().strip())

    async def wait_for(self, predicate: Callable[[list[str]], bool], timeout: float) -> None:
        async with asyncio.timeout(timeout):
            while not predicate(self.lines):
                if self._reader.done():
                    raise AssertionError(f"psc119 peer ended: {self.lines}")
                await asyncio.sleep(0.05)

    def joins(self) -> int:
        return sum(1 for line in self.lines if line.startswith("joined "))


async def test_a_kiosk_past_its_join_token_ttl_rejoins_by_itself_until_its_session_is_revoked(demo_dsn: str, tmp_path: Path) -> None:
    base = media_config(demo_dsn, tmp_path)
    api = await start_api(demo_dsn, dataclasses.replace(base, consult=dataclasses.replace(base.consult, join_token_ttl_s=2)))
    proc: asyncio.subprocess.Process | None = None
    try:
        async with LinkProxy(urlsplit(api.url("/")).port or 0) as link:
            room = await open_room(api)
            session = await api.login("puskesmas")  # the kiosk signs in once; its session file is all it keeps
            (tmp_path / "kiosk.session").write_text(session + "\n", encoding="utf-8")
            (tmp_path / "peer.toml").write_text("", encoding="utf-8")
            proc = await asyncio.create_subprocess_exec(
                *PSC119, "--config", str(tmp_path / "peer.toml"), "peer", "--consult", room.consult_id,
                "--session-file", str(tmp_path / "kiosk.session"), "--server", link.url, "--ice-host", "127.0.0.1",
                "--status-interval", "0.5",
                cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )  # fmt: skip
            kiosk = Output(proc)
            clock = FrameClock()
            budi = doctor(room, "specialist", room.url, clock)
            pk_id = member(room, "puskesmas")
            tasks = await run_peers(budi)
            try:
                await kiosk.wait_for(lambda _: kiosk.joins() == 1, 20)
                await budi.wait_until(lambda: budi.stats.video_from(pk_id) >= 10, 15)
                await asyncio.sleep(2.5)  # the kiosk's join token has expired
                start = time.monotonic()
                link.cut()
                await asyncio.sleep(1)
                link.restore()
                await kiosk.wait_for(lambda _: kiosk.joins() == 2, 15)
                await asyncio.sleep(1)
                gap = clock.longest_gap(start, time.monotonic())
                assert gap < MAX_GAP_S, gap
                # The session is the credential: revoked, the room ends the call and the kiosk stops.
                status, _ = await api.call("POST", "/api/auth/logout", session)
                assert status == 200
                code = await asyncio.wait_for(proc.wait(), 15)
                await kiosk.wait_for(lambda lines: any(line.startswith("refused ") for line in lines), 5)
            finally:
                await stop_peers([budi], tasks)
            assert code == 1, kiosk.lines
            assert "refused code=4401 reason=session_revoked" in kiosk.lines, kiosk.lines
    finally:
        if proc is not None and proc.returncode is None:
            proc.kill()
            await proc.wait()
        await close_api(api)


async def test_psc119_peer_takes_a_token_that_starts_with_a_dash_in_the_readme_form(mapi: Api, tmp_path: Path) -> None:
    room = await open_room(mapi)
    token = "-" + str(room.puskesmas["token"])[1:]  # issued before tokens avoided a leading "-"
    con = await asyncpg.connect(mapi.dsn)
    try:
        await con.execute(
            "UPDATE consult_grants SET digest = $1 WHERE consult_id = $2 AND member = $3",
            token_digest(token), uuid.UUID(room.consult_id), member(room, "puskesmas"),
        )
    finally:
        await con.close()
    (tmp_path / "peer.toml").write_text("", encoding="utf-8")
    proc = await asyncio.create_subprocess_exec(
        *PSC119, "--config", str(tmp_path / "peer.toml"), "peer", "--consult", room.consult_id, f"--token={token}",
        "--server", mapi.url("/").rstrip("/"), "--ice-host", "127.0.0.1",
        cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    output = Output(proc)
    try:
        await output.wait_for(lambda _: output.joins() == 1, 20)
    finally:
        proc.terminate()
        code = await asyncio.wait_for(proc.wait(), 10)
    assert code == 0, output.lines
