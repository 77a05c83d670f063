"""One aiortc RTCPeerConnection towards one other member of a consult room.

A `PeerLink` owns the connection, the tracks it sends (relayed from the peer's
media source) and the tasks draining what it receives; it offers, answers and
takes remote candidates. It decides nothing about *when*: `signaling.peer`
does, from the roles the server gave. aiortc never rolls back and has no
``restartIce()``, so a link is never renegotiated into something new: a
recovery is always a new `PeerLink`.

Neither an offer nor the connection an answer is made on depends on whom it is for: `prepare` builds a connection and
its tracks, with its offer (its candidates gathered) for a member that will offer, before the member is known, and a
`PeerLink` takes it over once it is.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiortc import (
    RTCConfiguration,
    RTCIceCandidate,
    RTCIceServer,
    RTCIceTransportPolicy,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.sdp import candidate_from_sdp
from av import AudioFrame, VideoFrame

from . import ice_hosts
from .ids import UserId
from .link_quality import LinkQuality
from .members import MemberRole
from .messages import Candidate

__all__ = ["PeerLink", "Prepared", "ice_ufrag", "prepare", "remote_candidate"]

log = logging.getLogger(__name__)

_UFRAG = re.compile(r"^a=ice-ufrag:(\S+)", re.MULTILINE)


def ice_ufrag(sdp: str) -> str | None:
    """The first ``a=ice-ufrag`` of a session description (a new one: an ICE restart)."""
    match = _UFRAG.search(sdp)
    return match.group(1) if match else None


def remote_candidate(message: Candidate) -> RTCIceCandidate | None:
    """The aiortc candidate of a ``candidate`` message; None is the end-of-candidates.
    (aiortc's parser wants the attribute value without its ``candidate:`` prefix.)"""
    if message.end_of_candidates:
        return None
    candidate = candidate_from_sdp(message.candidate.removeprefix("candidate:"))
    candidate.sdpMid = message.sdp_mid
    candidate.sdpMLineIndex = message.sdp_mline_index
    return candidate


def _connection(ice_servers: Sequence[RTCIceServer], relay_only: bool) -> RTCPeerConnection:
    policy = RTCIceTransportPolicy.RELAY if relay_only else RTCIceTransportPolicy.ALL
    return RTCPeerConnection(RTCConfiguration(iceServers=list(ice_servers), iceTransportPolicy=policy))


def _attach(pc: RTCPeerConnection, source: Any, relay: MediaRelay, offerer: bool) -> list[MediaStreamTrack]:
    """Send ``source``'s tracks on ``pc`` (reusing the transceivers of a remote offer); an offerer without a track
    of a kind still asks to receive that kind. The relayed tracks added."""
    added: list[MediaStreamTrack] = []
    sending = {t.sender.track.kind for t in pc.getTransceivers() if t.sender.track is not None}
    for kind in ("audio", "video"):
        if kind in sending:
            continue
        track = getattr(source, kind, None) if source is not None else None
        if track is not None:
            relayed = relay.subscribe(track, buffered=False)
            added.append(relayed)
            pc.addTrack(relayed)
        elif offerer:
            pc.addTransceiver(kind, direction="recvonly")
    return added


async def _set_local(pc: RTCPeerConnection, hosts: tuple[str, ...] | None, description: RTCSessionDescription) -> str:
    """setLocalDescription gathers the candidates: pin the host addresses around it, in whichever task this runs
    (aiortc's gathering tasks copy the context)."""
    pinned = ice_hosts.pin(hosts) if hosts is not None else None
    try:
        await pc.setLocalDescription(description)
    finally:
        if pinned is not None:
            ice_hosts.unpin(pinned)
    return str(pc.localDescription.sdp)


@dataclass(frozen=True, slots=True)
class Prepared:
    """A connection that sends our tracks, made for a member not named yet: with our offer in it (``sdp``, every
    candidate in it), or without (None) for the first offer we are to answer."""

    pc: RTCPeerConnection
    tracks: tuple[MediaStreamTrack, ...]
    sdp: str | None

    async def close(self) -> None:
        """Let it go unused."""
        for track in self.tracks:
            track.stop()
        await self.pc.close()


async def prepare(
    source: Any, relay: MediaRelay, *, offer: bool, ice_servers: Sequence[RTCIceServer],
    ice_host_addresses: tuple[str, ...] | None, relay_only: bool = False,
) -> Prepared:
    """Our connection, and our offer if we are to ``offer``, for a member not known yet. It is made while the
    process waits for other things (the room's welcome, the other member's offer): in steps that each give the event
    loop back, so that what arrives meanwhile waits for one step (a millisecond or less), not for the whole. An
    answerer's tracks are added before the offer comes: aiortc answers on the transceivers they made."""
    pc = _connection(ice_servers, relay_only)
    tracks: list[MediaStreamTrack] = []
    try:
        await asyncio.sleep(0)
        tracks = _attach(pc, source, relay, offerer=offer)
        if not offer:
            return Prepared(pc, tuple(tracks), None)
        await asyncio.sleep(0)
        description = await pc.createOffer()
        await asyncio.sleep(0)
        sdp = await _set_local(pc, ice_host_addresses, description)
    except BaseException:
        await Prepared(pc, tuple(tracks), None).close()
        raise
    return Prepared(pc, tuple(tracks), sdp)


class PeerLink:
    """The connection to ``user`` (``role``, connected with ``generation``).

    ``on_frame(kind, frame)`` sees every received frame; ``on_state(link)`` every
    connection state change. ``relay_only``: use TURN relay candidates only;
    ``quality``: adapts what the link sends, once negotiated (`signaling.link_quality`); ``prepared``: the
    connection made beforehand (`prepare`), with the offer that `offer` then sends or to answer on.
    """

    def __init__(
        self,
        user: UserId,
        role: MemberRole,
        generation: int,
        *,
        offerer: bool,
        ice_servers: Sequence[RTCIceServer],
        ice_host_addresses: tuple[str, ...] | None,
        on_frame: Callable[[str, AudioFrame | VideoFrame], None],
        on_state: Callable[[PeerLink], None],
        relay_only: bool = False,
        quality: LinkQuality | None = None,
        prepared: Prepared | None = None,
    ) -> None:
        self.user, self.role, self.generation, self.offerer = user, role, generation, offerer
        self.pc = prepared.pc if prepared is not None else _connection(ice_servers, relay_only)
        self._prepared_sdp = prepared.sdp if prepared is not None else None
        self.quality = quality
        self.remote_ufrag: str | None = None
        self.closing = False
        self.created_at = time.monotonic()
        self._ice_hosts = ice_host_addresses
        self._on_frame = on_frame
        self._tracks: list[MediaStreamTrack] = list(prepared.tracks) if prepared is not None else []
        self._tasks: set[asyncio.Task[None]] = set()

        @self.pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            task = asyncio.ensure_future(self._drain(track))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        @self.pc.on("connectionstatechange")
        def on_change() -> None:
            on_state(self)

    @property
    def state(self) -> str:
        return str(self.pc.connectionState)

    @property
    def connected(self) -> bool:
        return self.state == "connected"

    async def offer(self, source: Any, relay: MediaRelay) -> str:
        """Send ``source`` and make our offer, every candidate in it (half-trickle); or the prepared one."""
        if self._prepared_sdp is not None:
            return self._prepared_sdp
        self._tracks += _attach(self.pc, source, relay, self.offerer)
        return await _set_local(self.pc, self._ice_hosts, await self.pc.createOffer())

    async def answer(self, offer_sdp: str, source: Any, relay: MediaRelay) -> str:
        """Take the remote offer, send ``source`` on its transceivers, return our answer."""
        await self.pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
        self.remote_ufrag = ice_ufrag(offer_sdp)
        self._tracks += _attach(self.pc, source, relay, self.offerer)
        sdp = await _set_local(self.pc, self._ice_hosts, await self.pc.createAnswer())
        if self.quality is not None:
            self.quality.negotiated(self.pc)
        return sdp

    @property
    def awaiting_answer(self) -> bool:
        return bool(self.pc.signalingState == "have-local-offer")

    async def accept_answer(self, answer_sdp: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(answer_sdp, "answer"))
        self.remote_ufrag = ice_ufrag(answer_sdp)
        if self.quality is not None:
            self.quality.negotiated(self.pc)

    @property
    def has_remote_description(self) -> bool:
        return self.pc.remoteDescription is not None

    def needs_new_connection_for(self, offer_sdp: str) -> bool:
        """An offer this connection cannot take: it is ours to make, the connection
        is dead, or the offer restarts ICE (which aiortc cannot)."""
        return (
            self.offerer
            or self.state in ("failed", "closed")
            or (self.has_remote_description and self.remote_ufrag != ice_ufrag(offer_sdp))
        )

    async def add_candidate(self, candidate: RTCIceCandidate | None) -> None:
        await self.pc.addIceCandidate(candidate)

    async def _drain(self, track: MediaStreamTrack) -> None:
        """Read a received track to its end: a track nobody reads keeps its frames."""
        kind = track.kind
        try:
            while True:
                frame = await track.recv()
                if isinstance(frame, (AudioFrame, VideoFrame)):
                    self._on_frame(kind, frame)
        except MediaStreamError:
            pass

    async def close(self) -> None:
        self.closing = True
        if self.quality is not None:
            self.quality.close()
        for task in self._tasks:
            task.cancel()
        for track in self._tracks:
            track.stop()
        await self.pc.close()
