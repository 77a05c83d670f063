"""Consult video over a weak link, through the real app and a real coturn: both aiortc doctors
connect relay-only through `tests.impair.udp.UdpRelay` in front of coturn, send a busy picture
VP8 cannot compress, and the call degrades (smaller picture, lower bitrate, or audio only,
which both sides are told) instead of dying, then comes back when the link does."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import re
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from signaling.bandwidth import AdaptPolicy, Mode
from signaling.ids import UserId
from signaling.link_quality import AdaptOptions
from signaling.media import SyntheticSource
from signaling.messages import IceRestart
from signaling.peer import ConsultPeer
from tests.conftest import PSC119, REPO, Api, start_api
from tests.impair.turn_link import TurnLink, start_turn_link
from tests.server.test_consult_media import Room, media_config, member, open_room
from tests.server.test_consults import close_api
from tests.signaling.room_relay import run_peers, stop_peers

LOOPBACK = ["127.0.0.1"]
# Media from one doctor to the other crosses two links (its sender's up, its receiver's down):
# together 150 ms each way, about 2 % loss, 300 kbit/s: a puskesmas on 3G.
THREE_G = {"delay_s": 0.075, "loss": 0.01, "rate_bps": 300_000}
CLEAN: dict[str, Any] = {"delay_s": 0.0, "loss": 0.0, "rate_bps": None}
MIN_FPS = 10.0

log = logging.getLogger(__name__)


@dataclasses.dataclass
class WeakRoom:
    api: Api
    turn: TurnLink
    room: Room


@pytest.fixture
async def weak(demo_dsn: str, tmp_path: Path) -> AsyncIterator[WeakRoom]:
    turn = await start_turn_link(tmp_path, **THREE_G)
    api = await start_api(demo_dsn, dataclasses.replace(media_config(demo_dsn, tmp_path), ice=turn.ice))
    try:
        yield WeakRoom(api, turn, await open_room(api, turn=True))
    finally:
        await close_api(api)
        await turn.close()


def busy_peer(room: Room, who: str, **options: Any) -> ConsultPeer:
    join = room.puskesmas if who == "puskesmas" else room.specialist
    return ConsultPeer(
        room.url, str(join["token"]), source=SyntheticSource(320, 240, busy=True),
        ice_host_addresses=LOOPBACK, relay_only=True, **options,
    )  # fmt: skip


def relayed(peer: ConsultPeer, user: str) -> bool:
    """The connection's selected candidate pair uses TURN relay candidates at both ends."""
    pc = peer.peer_connections[user]  # type: ignore[index]
    ice = pc.getTransceivers()[0].receiver.transport.transport
    pair = ice._connection._nominated.get(1)  # aioice keeps the nominated pair per component
    return pair is not None and pair.local_candidate.type == "relay" and pair.remote_candidate.type == "relay"


def sending(peer: ConsultPeer, user: str) -> Mode:
    return peer.sending_modes.get(user, Mode.VIDEO)  # type: ignore[call-overload, no-any-return]


async def steady_window(
    sender: ConsultPeer, receiver: ConsultPeer, s_id: str, r_id: str, seconds: float = 8, tries: int = 4
) -> tuple[Mode, float, float]:
    """A window of ``seconds`` in which ``sender`` kept one mode towards ``receiver``: that mode, and the
    video and audio frames a second ``receiver`` got (a mode change inside a window starts another)."""
    for _ in range(tries):
        mode = sending(sender, r_id)
        video, audio, start = receiver.stats.video_from(s_id), receiver.stats.audio_from(s_id), time.monotonic()
        def over(start: float = start, mode: Mode = mode) -> bool:
            return time.monotonic() - start >= seconds or sending(sender, r_id) is not mode

        await receiver.wait_until(over, seconds + 1)
        elapsed = time.monotonic() - start
        if sending(sender, r_id) is mode and elapsed >= seconds:
            return mode, (receiver.stats.video_from(s_id) - video) / elapsed, (receiver.stats.audio_from(s_id) - audio) / elapsed
    raise AssertionError(f"{s_id} never held one mode for {seconds} s")


async def connect(weak: WeakRoom, **options: Any) -> tuple[ConsultPeer, ConsultPeer, str, str, list[Any]]:
    ani, budi = busy_peer(weak.room, "puskesmas", **options), busy_peer(weak.room, "specialist", **options)
    pk, sp = member(weak.room, "puskesmas"), member(weak.room, "specialist")
    tasks = await run_peers(ani, budi)
    await ani.wait_until(lambda: ani.connected_to(sp) and budi.connected_to(pk), 20)
    return ani, budi, pk, sp, tasks


async def assert_degraded_not_dead(sender: ConsultPeer, receiver: ConsultPeer, s_id: str, r_id: str) -> str:
    """Video at a smaller picture and at least MIN_FPS, or audio only and audio flowing; both sides agree which."""
    mode, video_fps, audio_fps = await steady_window(sender, receiver, s_id, r_id)
    quality = sender._links[r_id].quality  # type: ignore[index]
    assert quality is not None and quality.encoder is not None
    assert receiver.receiving_modes.get(s_id) is mode, (receiver.receiving_modes, mode)  # type: ignore[call-overload]
    assert audio_fps > 30, audio_fps  # of 50 Opus frames a second: audio flows
    if mode is Mode.VIDEO:
        assert video_fps >= MIN_FPS, (video_fps, quality.samples[-8:])
        assert quality.encoder.size is not None and quality.encoder.size < (320, 240), quality.encoder.size
    else:
        assert mode is Mode.AUDIO_ONLY and video_fps < 2, (mode, video_fps, quality.samples[-8:])  # the last frames sent before the pause
    recent = [(round(s.loss or 0, 2), s.rtt and round(s.rtt, 2), s.remote_fps, m.value, b) for s, m, b in quality.samples[-12:]]
    log.info(
        "%s→%s: %s, %.1f video frames/s, %.1f audio frames/s; (loss, rtt, fps, mode, bit/s): %s",
        s_id, r_id, mode.value, video_fps, audio_fps, recent,
    )  # fmt: skip
    return mode.value


async def test_a_busy_picture_over_3g_degrades_to_a_smaller_picture_or_audio_only_and_both_sides_know(weak: WeakRoom) -> None:
    ani, budi, pk, sp, tasks = await connect(weak)
    try:
        assert relayed(ani, sp) and relayed(budi, pk)
        await asyncio.sleep(10)  # the first seconds overfill the link, then the senders adapt
        await asyncio.gather(assert_degraded_not_dead(ani, budi, pk, sp), assert_degraded_not_dead(budi, ani, sp, pk))
        assert weak.turn.relay.sent > 1000  # the media crossed the impaired link
    finally:
        await stop_peers([ani, budi], tasks)


async def test_when_the_link_recovers_video_comes_back(weak: WeakRoom) -> None:
    weak.turn.relay.impair(rate_bps=90_000)  # less than audio and the smallest video together
    policy = dataclasses.replace(AdaptPolicy(), probe_max=8.0)
    ani, budi, pk, sp, tasks = await connect(weak, adapt=AdaptOptions(policy))
    try:
        await ani.wait_until(lambda: sending(ani, sp) is Mode.AUDIO_ONLY and budi.receiving_modes.get(pk) is Mode.AUDIO_ONLY, 30)  # type: ignore[call-overload]
        for _ in range(4):  # a probe or the switch's queued video can crowd one window's audio on a loaded machine
            # Video is probed again after 5 s of calm, then every 8 s: a 4 s window fits between two probes, but
            # which try of it lands there depends on the machine's pace, so it gets as many tries as probes in 32 s.
            mode, video_fps, audio_fps = await steady_window(ani, budi, pk, sp, seconds=4, tries=8)
            if audio_fps > 30:
                break
        assert mode is Mode.AUDIO_ONLY and video_fps < 2 and audio_fps > 30, (mode, video_fps, audio_fps)
        weak.turn.relay.impair(**CLEAN)
        await ani.wait_until(lambda: sending(ani, sp) is Mode.VIDEO and budi.receiving_modes.get(pk) is Mode.VIDEO, 20)  # type: ignore[call-overload]
        for _ in range(6):  # the first keyframe after the pause may take a retransmission or two
            mode, video_fps, audio_fps = await steady_window(ani, budi, pk, sp, seconds=3)
            if video_fps >= 20:
                break
        assert mode is Mode.VIDEO and video_fps >= 20 and audio_fps > 40, (mode, video_fps, audio_fps)
    finally:
        await stop_peers([ani, budi], tasks)


def small_peers(weak: WeakRoom, relay_only: bool) -> tuple[ConsultPeer, ConsultPeer, str, str]:
    """The puskesmas's and the specialist's peers with a small picture, and their member ids."""
    ani, budi = (
        ConsultPeer(weak.room.url, str(join["token"]), source=SyntheticSource(160, 120), ice_host_addresses=LOOPBACK, relay_only=relay_only)
        for join in (weak.room.puskesmas, weak.room.specialist)
    )
    return ani, budi, member(weak.room, "puskesmas"), member(weak.room, "specialist")


async def pair_through(weak: WeakRoom, relay_only: bool) -> tuple[bool, bool]:
    """Whether each side's selected pair is relayed, once video flows both ways."""
    ani, budi, pk, sp = small_peers(weak, relay_only)
    tasks = await run_peers(ani, budi)
    try:
        await ani.wait_until(lambda: ani.connected_to(sp) and budi.connected_to(pk), 20)
        await ani.wait_until(lambda: budi.stats.video_from(pk) > 10 and ani.stats.video_from(sp) > 10, 10)
        return relayed(ani, sp), relayed(budi, pk)
    finally:
        await stop_peers([ani, budi], tasks)


async def test_relay_only_peers_connect_through_the_turn_relay_and_others_directly(weak: WeakRoom) -> None:
    weak.turn.relay.impair(**CLEAN)
    assert await pair_through(weak, relay_only=True) == (True, True)
    assert await pair_through(weak, relay_only=False) == (False, False)


async def test_psc119_peer_relay_only_and_audio_only_says_so_on_both_sides(weak: WeakRoom, tmp_path: Path) -> None:
    weak.turn.relay.impair(**CLEAN)
    settings = tmp_path / "peer.toml"
    settings.write_text("", encoding="utf-8")  # defaults, whatever ./config.toml says
    proc = await asyncio.create_subprocess_exec(
        *PSC119, "--config", str(settings), "peer", "--consult", weak.room.consult_id, "--token", str(weak.room.puskesmas["token"]),
        "--server", weak.api.url("/").rstrip("/"), "--ice-host", "127.0.0.1", "--relay-only", "--audio-only",
        "--max-bitrate", "200000", "--resolution", "160x120", "--status-interval", "0.5",
        cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    budi = busy_peer(weak.room, "specialist")
    pk, sp = member(weak.room, "puskesmas"), member(weak.room, "specialist")
    tasks = await run_peers(budi)
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(30):
            while f"mode peer={sp} sending=audio_only receiving=video" not in lines:
                line = (await proc.stdout.readline()).decode()
                assert line, f"psc119 peer ended early: {lines}"
                lines.append(line.strip())
        await budi.wait_until(lambda: budi.stats.audio_from(pk) > 50 and budi.receiving_modes.get(pk) is Mode.AUDIO_ONLY, 10)  # type: ignore[call-overload]
        assert budi.stats.video_from(pk) == 0 and relayed(budi, pk)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(proc.communicate(), 15)
        await stop_peers([budi], tasks)
    assert proc.returncode == 0, err.decode()[-2000:]
    assert re.search(r"frames video=[1-9]\d* audio=[1-9]", "\n".join(lines) + out.decode()), lines  # it receives video


async def test_a_renegotiation_over_a_dead_link_does_not_hold_up_the_signaling(weak: WeakRoom) -> None:
    """A new connection replaces the old one, whose closing releases its TURN allocation: over a dead link
    that waits out every retry (half a minute). Neither peer's signaling (the offer, a chat) waits for it."""
    weak.turn.relay.impair(**CLEAN)
    ani, budi, pk, sp = small_peers(weak, relay_only=True)
    tasks = await run_peers(ani, budi)
    try:
        await ani.wait_until(lambda: ani.connected_to(sp) and budi.connected_to(pk), 20)
        offerer, answerer, offerer_id = (ani, budi, pk) if ani._links[UserId(sp)].offerer else (budi, ani, sp)
        weak.turn.relay.impair(loss=1.0)
        negotiations = offerer.stats.negotiations
        await answerer._send(IceRestart(to=UserId(offerer_id)))  # what it sends when its connection is lost
        await offerer.wait_until(lambda: offerer.stats.negotiations > negotiations, 15)  # the new offer is out
        start = time.monotonic()
        await offerer.send_chat("masih di sini?")
        await answerer.wait_until(lambda: len(answerer.chats) == 1, 30)
        assert time.monotonic() - start < 8  # at most one gathering's wait (5 s), not the old allocation's retries
    finally:
        weak.turn.relay.impair(loss=0.0)
        await stop_peers([ani, budi], tasks)
