"""Benchmark: a consult's join → first video frame both ways, two aiortc peers through psc119 against bare aiortc.

psc119: a real ``psc119 serve`` (its own process, embedded PostgreSQL, the demo region); for each of ``--runs``
accepted consults both doctors join its room as `signaling.peer.ConsultPeer`s (aiortc, a synthetic 320x240
camera and a tone, ICE host addresses pinned to 127.0.0.1), timed from starting both until each has decoded a
video frame from the other (each frame's own arrival time). Baseline, the same run, alternating with it: two bare
aiortc ``RTCPeerConnection``s in this process with the same tracks, the offer and answer handed over directly,
timed from building the two connections (as each psc119 peer builds its own within its timing) to the same two
frames. Prints the medians and the ratio; asserts no timings.

    python bench/bench_consult_media.py [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.mediastreams import MediaStreamTrack
from results import Row, emit

from bench_support import consult_rooms, demo_server
from signaling import ice_hosts
from signaling.media import SyntheticSource
from signaling.members import MemberRole
from signaling.peer import ConsultPeer

LOOPBACK = ["127.0.0.1"]
ROLES = (MemberRole.REQUESTER, MemberRole.SPECIALIST)
SETTLE_S = 0.3  # after each run, so that the next does not share the CPU with its teardown (the server's too)


async def through_psc119(url: str, pk_token: str, sp_token: str) -> float:
    """Milliseconds from starting both peers until each has decoded a video frame from the other."""
    sources = [SyntheticSource(320, 240), SyntheticSource(320, 240)]
    # Each knows its role, as the kiosk and the specialist's own client do: only the requester prepares its offer.
    peers = [ConsultPeer(url, token, source=source, ice_host_addresses=LOOPBACK, role=role)
             for token, source, role in zip((pk_token, sp_token), sources, ROLES, strict=True)]
    started = time.monotonic()
    tasks = [asyncio.create_task(p.run()) for p in peers]
    try:
        await peers[0].wait_until(lambda: all(p.stats.first_video_at for p in peers), 30)
        # The frames' own arrival times, as the baseline's: not the moment the poll above noticed them.
        return (max(p.stats.first_video_at or 0.0 for p in peers) - started) * 1000
    finally:
        for p in peers:
            await p.stop()
        await asyncio.wait_for(asyncio.gather(*tasks), 10)
        for source in sources:
            source.stop()


async def first_frame(track: MediaStreamTrack, done: asyncio.Future[float]) -> None:
    await track.recv()
    if not done.done():
        done.set_result(time.monotonic())


async def bare_aiortc() -> float:
    """Milliseconds from building two in-process peers' connections until each has decoded a video frame."""
    token = ice_hosts.pin(LOOPBACK)
    loop = asyncio.get_running_loop()
    sources = [SyntheticSource(320, 240), SyntheticSource(320, 240)]  # made before the clock starts, as psc119's
    # Each psc119 peer builds its connection within its timing: so do these.
    started = time.monotonic()
    pcs = [RTCPeerConnection(RTCConfiguration(iceServers=[])) for _ in range(2)]
    frames = [loop.create_future(), loop.create_future()]
    readers: list[asyncio.Task[None]] = []
    for pc, source, done in zip(pcs, sources, frames, strict=True):
        pc.addTrack(source.video)
        pc.addTrack(source.audio)

        def on_track(track: MediaStreamTrack, done: asyncio.Future[float] = done) -> None:
            if track.kind == "video":
                readers.append(asyncio.ensure_future(first_frame(track, done)))

        pc.on("track", on_track)
    try:
        await pcs[0].setLocalDescription(await pcs[0].createOffer())
        await pcs[1].setRemoteDescription(pcs[0].localDescription)
        await pcs[1].setLocalDescription(await pcs[1].createAnswer())
        await pcs[0].setRemoteDescription(pcs[1].localDescription)
        arrived = await asyncio.wait_for(asyncio.gather(*frames), 30)
        return (max(arrived) - started) * 1000
    finally:
        for task in readers:
            task.cancel()
        for pc in pcs:
            await pc.close()
        for source in sources:
            source.stop()
        ice_hosts.unpin(token)


async def main(runs: int) -> None:
    ice_hosts.install()
    ours, bare = [], []
    async with demo_server("psc119-bench-media-") as server:
        # Alternated, so that both see the same load on a shared machine.
        for url, pk_token, sp_token in await consult_rooms(server.url, runs):
            ours.append(await through_psc119(url, pk_token, sp_token))
            await asyncio.sleep(SETTLE_S)
            bare.append(await bare_aiortc())
            await asyncio.sleep(SETTLE_S)
    print(f"join → first video frame both ways, median of {runs}: psc119 {statistics.median(ours):.0f} ms, "
          f"bare aiortc {statistics.median(bare):.0f} ms")
    emit(Row(f"consult join → first frame both ways, 2 aiortc peers (median of {runs})", statistics.median(ours),
             statistics.median(bare), "bare aiortc, offer/answer in process", "ms"))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    asyncio.run(main(parser.parse_args().runs))
