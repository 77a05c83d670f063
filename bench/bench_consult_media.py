"""Benchmark: a consult's join → first video frame both ways, two aiortc peers through psc119 against bare aiortc.

psc119: a real ``psc119 serve`` (its own process, embedded PostgreSQL, the demo region); for each of ``--runs``
accepted consults both doctors join its room as `signaling.peer.ConsultPeer`s (aiortc, a synthetic 320x240
camera and a tone, ICE host addresses pinned to 127.0.0.1), timed from starting both until each has decoded a
video frame from the other. Baseline, the same run: two bare aiortc ``RTCPeerConnection``s in this process with
the same tracks, the offer and answer handed over directly, timed from ``createOffer`` to the same two frames.
Prints the medians and the ratio; asserts no timings.

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
from signaling.peer import ConsultPeer

LOOPBACK = ["127.0.0.1"]


async def through_psc119(runs: int) -> list[float]:
    times = []
    async with demo_server("psc119-bench-media-") as server:
        for url, pk_token, sp_token in await consult_rooms(server.url, runs):
            sources = [SyntheticSource(320, 240), SyntheticSource(320, 240)]
            peers = [ConsultPeer(url, token, source=source, ice_host_addresses=LOOPBACK)
                     for token, source in zip((pk_token, sp_token), sources, strict=True)]
            started = time.perf_counter()
            tasks = [asyncio.create_task(p.run()) for p in peers]
            try:
                await peers[0].wait_until(lambda peers=peers: min(p.stats.video_frames for p in peers) >= 1, 30)
                times.append((time.perf_counter() - started) * 1000)
            finally:
                for p in peers:
                    await p.stop()
                await asyncio.wait_for(asyncio.gather(*tasks), 10)
                for source in sources:
                    source.stop()
    return times


async def first_frame(track: MediaStreamTrack, done: asyncio.Future[float]) -> None:
    await track.recv()
    if not done.done():
        done.set_result(time.perf_counter())


async def bare_aiortc(runs: int) -> list[float]:
    times = []
    token = ice_hosts.pin(LOOPBACK)
    try:
        for _ in range(runs):
            loop = asyncio.get_running_loop()
            pcs = [RTCPeerConnection(RTCConfiguration(iceServers=[])) for _ in range(2)]
            sources = [SyntheticSource(320, 240), SyntheticSource(320, 240)]
            frames = [loop.create_future(), loop.create_future()]
            readers: list[asyncio.Task[None]] = []
            for pc, source, done in zip(pcs, sources, frames, strict=True):
                pc.addTrack(source.video)
                pc.addTrack(source.audio)

                def on_track(
                    track: MediaStreamTrack, done: asyncio.Future[float] = done, readers: list[asyncio.Task[None]] = readers
                ) -> None:
                    if track.kind == "video":
                        readers.append(asyncio.ensure_future(first_frame(track, done)))

                pc.on("track", on_track)
            started = time.perf_counter()
            try:
                await pcs[0].setLocalDescription(await pcs[0].createOffer())
                await pcs[1].setRemoteDescription(pcs[0].localDescription)
                await pcs[1].setLocalDescription(await pcs[1].createAnswer())
                await pcs[0].setRemoteDescription(pcs[1].localDescription)
                arrived = await asyncio.wait_for(asyncio.gather(*frames), 30)
                times.append((max(arrived) - started) * 1000)
            finally:
                for task in readers:
                    task.cancel()
                for pc in pcs:
                    await pc.close()
                for source in sources:
                    source.stop()
    finally:
        ice_hosts.unpin(token)
    return times


async def main(runs: int) -> None:
    ice_hosts.install()
    ours = statistics.median(await through_psc119(runs))
    bare = statistics.median(await bare_aiortc(runs))
    print(f"join → first video frame both ways, median of {runs}: psc119 {ours:.0f} ms, bare aiortc {bare:.0f} ms")
    emit(Row(f"consult join → first frame both ways, 2 aiortc peers (median of {runs})", ours, bare,
             "bare aiortc, offer/answer in process", "ms"))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    asyncio.run(main(parser.parse_args().runs))
