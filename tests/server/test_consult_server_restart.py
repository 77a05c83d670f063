"""The server holding a consult's room is killed (SIGKILL) and started again at the same address while two
aiortc doctors are in a call: their media runs peer to peer, so it never stops (no gap over 1 s in the frames
each side decodes), and both rejoin the room by themselves once the server is back."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp

from tests.server.blip_support import FrameClock
from tests.server.process_support import Remote, Served, cli_env, free_port
from tests.server.test_consult_blips import MAX_GAP_S, doctor
from tests.server.test_consult_media import member, open_room
from tests.signaling.room_relay import run_peers, stop_peers


async def test_media_never_stops_while_the_server_is_killed_and_restarted(demo_dsn: str, tmp_path: Path) -> None:
    args, env = ["serve", "--port", str(free_port())], cli_env(demo_dsn)
    server = await Served.start(args, env, tmp_path / "serve-1.log")
    session = aiohttp.ClientSession()
    try:
        room = await open_room(Remote(None, session, demo_dsn, base=server.url))  # type: ignore[arg-type]
        clocks = FrameClock(), FrameClock()
        ani, budi = doctor(room, "puskesmas", room.url, clocks[0]), doctor(room, "specialist", room.url, clocks[1])
        pk_id, sp_id = member(room, "puskesmas"), member(room, "specialist")
        tasks = await run_peers(ani, budi)
        try:
            await ani.wait_until(lambda: ani.stats.video_from(sp_id) >= 10 and budi.stats.video_from(pk_id) >= 10, 10)
            pcs = ani.peer_connections[sp_id], budi.peer_connections[pk_id]
            start = time.monotonic()
            await server.kill()  # kill -9: no close frame, no goodbye
            server = await Served.start(args, env, tmp_path / "serve-2.log")
            await ani.wait_until(lambda: ani.stats.joins == 2 and budi.stats.joins == 2, 20)
            await asyncio.sleep(1)
            gaps = clocks[0].longest_gap(start, time.monotonic()), clocks[1].longest_gap(start, time.monotonic())
            assert max(gaps) < MAX_GAP_S, gaps
            assert (ani.peer_connections[sp_id], budi.peer_connections[pk_id]) == pcs
            await budi.send_chat("Server sempat mati, gambar tetap jalan.")
            await ani.wait_until(lambda: len(ani.chats) == 1, 5)
        finally:
            await stop_peers([ani, budi], tasks)
        await server.terminate()
    finally:
        await session.close()
        await server.kill()
