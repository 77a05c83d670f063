"""The aiortc consult peer against a real websocket relay of the pure Room (no app,
no database): media both ways, chat, recovery after a drop. Loopback only."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import av
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from websockets.asyncio.client import connect

from signaling import ice_hosts
from signaling.ids import UserId
from signaling.media import SyntheticSource, file_source
from signaling.members import PeerKind
from signaling.messages import Answer, Candidate, Join, Offer, Welcome, encode, parse
from signaling.peer import ConsultPeer, PeerRefused
from signaling.recorder import ConsultRecorder

from .media_checks import assert_both_doctors_recorded
from .room_relay import RoomRelay, run_peers, stop_peers

LOOPBACK = ["127.0.0.1"]
ANI, BUDI, RECORDER = "dr-ani", "dr-budi", "svc-recorder"


@pytest.fixture
async def relay() -> AsyncIterator[RoomRelay]:
    server = RoomRelay("c-peer-1", ANI, BUDI)
    await server.start()
    yield server
    await server.close()


def make_peer(relay: RoomRelay, user: str, source: SyntheticSource | None = None) -> ConsultPeer:
    return ConsultPeer(
        relay.url,
        relay.token_for(user),
        source=source or SyntheticSource(width=160, height=120, fps=30),
        ice_host_addresses=LOOPBACK,
    )


async def test_media_flows_both_ways_and_chat_goes_through(relay: RoomRelay) -> None:
    ani, budi = make_peer(relay, ANI), make_peer(relay, BUDI)
    tasks = await run_peers(ani, budi)
    try:
        await ani.wait_until(lambda: ani.stats.video_from(BUDI) >= 20 and ani.stats.audio_from(BUDI) >= 20, 10)
        await budi.wait_until(lambda: budi.stats.video_from(ANI) >= 20 and budi.stats.audio_from(ANI) >= 20, 10)
        await ani.send_chat("Pasien 54 th, nyeri dada 2 jam, EKG terlampir")
        await budi.wait_until(lambda: len(budi.chats) == 1, 5)
        assert budi.chats[0].text == "Pasien 54 th, nyeri dada 2 jam, EKG terlampir"
        assert budi.chats[0].sender == ANI
        assert ani.connected_to(BUDI) and budi.connected_to(ANI)
        # Only ICE host candidates on loopback were offered.
        pc = ani.peer_connections[BUDI]
        assert pc.localDescription is not None
        candidates = [line for line in pc.localDescription.sdp.splitlines() if line.startswith("a=candidate:")]
        assert candidates and all(" 127.0.0.1 " in line for line in candidates)
    finally:
        await stop_peers([ani, budi], tasks)


@pytest.mark.parametrize("dropper", [ANI, BUDI], ids=["offerer-drops", "answerer-drops"])
async def test_a_dropped_peer_rejoins_and_media_flows_again(relay: RoomRelay, dropper: str) -> None:
    ani, budi = make_peer(relay, ANI), make_peer(relay, BUDI)
    peers = {ANI: ani, BUDI: budi}
    dropped, other = peers[dropper], peers[BUDI if dropper == ANI else ANI]
    other_user = BUDI if dropper == ANI else ANI
    tasks = await run_peers(ani, budi)
    try:
        await ani.wait_until(lambda: ani.stats.video_from(BUDI) >= 10, 10)
        await budi.wait_until(lambda: budi.stats.video_from(ANI) >= 10, 10)
        ws = dropped.websocket
        assert ws is not None
        old_pc = dropped.peer_connections[other_user]
        # The network goes away: the socket dies without a close handshake, the
        # peer connection with it.
        ws.transport.abort()
        await old_pc.close()
        dropped_at = time.monotonic()
        seen_by_other = other.stats.video_from(dropper)
        seen_by_dropped = dropped.stats.video_from(other_user)
        await dropped.wait_until(lambda: dropped.stats.joins == 2, 5)
        await other.wait_until(lambda: other.stats.video_from(dropper) >= seen_by_other + 20, 5)
        await dropped.wait_until(lambda: dropped.stats.video_from(other_user) >= seen_by_dropped + 20, 5)
        assert dropped.peer_connections[other_user] is not old_pc
        assert time.monotonic() - dropped_at < 5
    finally:
        await stop_peers([ani, budi], tasks)


async def test_a_rejected_token_ends_the_peer(relay: RoomRelay) -> None:
    relay.token_for(ANI)
    peer = ConsultPeer(relay.url, "x" * 43, ice_host_addresses=LOOPBACK)
    with pytest.raises(PeerRefused) as refused:
        await asyncio.wait_for(peer.run(), 5)
    assert refused.value.code == 4401


async def test_recorder_writes_every_doctor_to_a_playable_webm(tmp_path: Path) -> None:
    relay = RoomRelay("c-rec-1", ANI, BUDI, recorder=RECORDER)
    await relay.start()
    ani = ConsultPeer(relay.url, relay.token_for(ANI), source=SyntheticSource(160, 120), ice_host_addresses=LOOPBACK,
                      consent_recording=True)
    budi = ConsultPeer(relay.url, relay.token_for(BUDI), source=SyntheticSource(160, 120), ice_host_addresses=LOOPBACK,
                       consent_recording=True)
    path = tmp_path / "c-rec-1.webm"
    recorder = ConsultRecorder(relay.url, relay.token_for(RECORDER), path, ice_host_addresses=LOOPBACK,
                               fps=15)
    tasks = await run_peers(ani, budi)
    try:
        await ani.wait_until(lambda: ani.stats.video_from(BUDI) >= 5, 10)
        recording = asyncio.create_task(recorder.run())
        await ani.wait_until(lambda: recorder.frames_received >= 100, 10)
        await asyncio.sleep(2.0)
        recorder.stop()
        result = await asyncio.wait_for(recording, 10)
    finally:
        await stop_peers([ani, budi], tasks)
        await relay.close()
    assert result is not None and result.path == path and result.bytes == path.stat().st_size
    duration = assert_both_doctors_recorded(path)
    assert 1.5 <= duration <= result.ended_at - result.started_at + 0.5


async def _drain(track: MediaStreamTrack, counts: dict[str, int]) -> None:
    try:
        while True:
            await track.recv()
            counts[track.kind] += 1
    except MediaStreamError:
        pass


async def test_a_browser_style_offerer_with_trickled_candidates(relay: RoomRelay) -> None:
    """A browser offers (it is the pair's offerer) and trickles its candidates one by
    one, then an end-of-candidates; the aiortc peer answers and applies them."""
    budi = make_peer(relay, BUDI)
    tasks = await run_peers(budi)
    pinned = ice_hosts.pin(LOOPBACK)
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    source = SyntheticSource(160, 120)
    counts = {"audio": 0, "video": 0}
    drains: list[asyncio.Task[None]] = []
    try:
        await budi.wait_until(lambda: budi.welcome is not None, 5)
        async with connect(relay.url) as ws:
            await ws.send(encode(Join(token=relay.token_for(ANI), kind=PeerKind.BROWSER)))
            welcome = parse(await ws.recv())
            assert isinstance(welcome, Welcome) and welcome.peers[0].offerer and welcome.peers[0].polite
            pc.on("track", lambda track: drains.append(asyncio.create_task(_drain(track, counts))))
            pc.addTrack(source.audio)
            pc.addTrack(source.video)
            await pc.setLocalDescription(await pc.createOffer())
            full = pc.localDescription.sdp
            first_section = full.split("\r\nm=")[1]
            lines = [line[2:] for line in first_section.split("\r\n") if line.startswith("a=candidate:")]
            assert lines
            bare = "".join(line + "\r\n" for line in full.split("\r\n") if line and not line.startswith(("a=candidate:", "a=end-of-candidates")))
            await ws.send(encode(Offer(bare, to=UserId(BUDI))))
            for line in lines:
                await ws.send(encode(Candidate(line, sdp_mid="0", sdp_mline_index=0, to=UserId(BUDI))))
            await ws.send(encode(Candidate("", sdp_mid="0", to=UserId(BUDI))))
            answer = parse(await ws.recv())
            assert isinstance(answer, Answer) and answer.sender == BUDI
            await pc.setRemoteDescription(RTCSessionDescription(answer.sdp, "answer"))
            await budi.wait_until(lambda: budi.stats.video_from(ANI) >= 20 and budi.stats.audio_from(ANI) >= 20, 10)
            await budi.wait_until(lambda: counts["video"] >= 20 and counts["audio"] >= 20, 10)
    finally:
        await pc.close()
        source.stop()
        ice_hosts.unpin(pinned)
        await stop_peers([budi], tasks)
        for task in drains:
            task.cancel()


@pytest.mark.parametrize("dropper", [ANI, BUDI], ids=["offerer-pc-fails", "answerer-pc-fails"])
async def test_a_failed_peer_connection_alone_is_renegotiated(relay: RoomRelay, dropper: str) -> None:
    """Signaling stays up, only the media connection dies: the offerer renegotiates at
    once, or the answerer asks it to with ice_restart; a fresh connection each time."""
    ani, budi = make_peer(relay, ANI), make_peer(relay, BUDI)
    peers = {ANI: ani, BUDI: budi}
    other_user = BUDI if dropper == ANI else ANI
    dropped, other = peers[dropper], peers[other_user]
    tasks = await run_peers(ani, budi)
    try:
        await ani.wait_until(lambda: ani.stats.video_from(BUDI) >= 10 and budi.stats.video_from(ANI) >= 10, 10)
        old = dropped.peer_connections[other_user]
        await old.close()
        seen = dropped.stats.video_from(other_user), other.stats.video_from(dropper)
        await ani.wait_until(
            lambda: dropped.stats.video_from(other_user) >= seen[0] + 20 and other.stats.video_from(dropper) >= seen[1] + 20, 5
        )
        assert dropped.peer_connections[other_user] is not old
        assert ani.stats.joins == budi.stats.joins == 1  # no rejoin was needed
    finally:
        await stop_peers([ani, budi], tasks)


def _write_clip(path: Path, seconds: int = 2) -> None:
    """A small VP8 + Opus clip, as a puskesmas kiosk might play instead of a camera."""
    with av.open(str(path), "w", format="webm") as out:
        video = out.add_stream("libvpx", rate=15)
        video.width, video.height, video.pix_fmt = 160, 120, "yuv420p"
        audio = out.add_stream("libopus", rate=48000)
        for n in range(15 * seconds):
            frame = av.VideoFrame(160, 120, "yuv420p")
            for plane, value in zip(frame.planes, ((n * 8) % 256, 128, 128), strict=True):
                plane.update(bytes([value]) * plane.buffer_size)
            frame.pts = n
            out.mux(video.encode(frame))
        for n in range(50 * seconds):
            sound = av.AudioFrame(format="s16", layout="stereo", samples=960)
            sound.planes[0].update(bytes(sound.planes[0].buffer_size))
            sound.sample_rate, sound.pts = 48000, n * 960
            out.mux(audio.encode(sound))
        out.mux(video.encode(None))
        out.mux(audio.encode(None))


async def test_a_peer_can_send_a_file_instead_of_a_camera(relay: RoomRelay, tmp_path: Path) -> None:
    clip = tmp_path / "clip.webm"
    _write_clip(clip)
    player = file_source(str(clip))
    ani = ConsultPeer(relay.url, relay.token_for(ANI), source=player, ice_host_addresses=LOOPBACK)
    budi = make_peer(relay, BUDI)
    tasks = await run_peers(ani, budi)
    try:
        # 45 frames at 15 fps outlast the 2 s clip: it loops.
        await budi.wait_until(lambda: budi.stats.video_from(ANI) >= 45 and budi.stats.audio_from(ANI) >= 50, 10)
    finally:
        await stop_peers([ani, budi], tasks)
        for track in (player.audio, player.video):
            track.stop()
