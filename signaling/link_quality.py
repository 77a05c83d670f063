"""One aiortc connection's sending, adapted to its link once a second.

`LinkQuality` belongs to one `PeerLink`. Once the connection is negotiated it puts
`send_encoders` on its senders; once connected it reads the receiver reports aiortc keeps
(``remote-inbound-rtp``: fraction lost, round-trip time, when the last report came; each
report once), the REMB the receiver sent, and the frames a second the other side says it
decodes from us (its ``quality`` message) against those we encoded, feeds them to
`bandwidth.BandwidthController` and applies the decision: the video encoder's bitrate, size and pause. Every change of mode is passed to
``on_mode`` (the peer tells the other side and its user).

It also shortens how long the connection's video receiver waits for a lost packet: aiortc
holds 512 packets behind a hole before it gives up and asks for a keyframe, which at the
20-30 packets a second of a weak link's video is a frozen picture for 20 s after one
packet whose retransmission was lost too. 128 packets still hold the largest keyframe, and
`jitter.TimedJitterBuffer` gives up after a time too (on 2G, 128 packets are 25 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from aiortc import RTCPeerConnection

from . import send_encoders
from .bandwidth import AdaptPolicy, BandwidthController, LinkSample, Mode
from .jitter import TimedJitterBuffer
from .send_encoders import AdaptiveVideoEncoder

__all__ = ["AdaptOptions", "LinkQuality"]

log = logging.getLogger(__name__)

VIDEO_JITTER_PACKETS = 128


@dataclass(frozen=True, slots=True)
class AdaptOptions:
    """How a peer adapts: the controller's policy, the largest picture it sends, whether it
    sends video at all, and how often it looks at the link."""

    policy: AdaptPolicy = AdaptPolicy()
    max_size: tuple[int, int] | None = None
    video: bool = True
    interval: float = 1.0


class LinkQuality:
    FPS_SAMPLES = 3  # our frame rate over the last two samples: the other side reports every two seconds

    def __init__(self, options: AdaptOptions, on_mode: Callable[[Mode, str], None]) -> None:
        self.options = options
        self.remote_fps: float | None = None
        self.encoder: AdaptiveVideoEncoder | None = None
        self._on_mode = on_mode
        self._controller: BandwidthController | None = None
        self._task: asyncio.Task[None] | None = None
        self.samples: list[tuple[LinkSample, Mode, int]] = []  # the last minute, for people and tests
        self._reports: dict[str, datetime] = {}  # the arrival of the last receiver report read, by stats id
        self._encoded: list[tuple[float, int]] = []  # (when, frames encoded) of the last samples

    @property
    def mode(self) -> Mode:
        if self._controller is None:
            return Mode.VIDEO if self.options.video else Mode.AUDIO_ONLY
        return self._controller.mode

    def negotiated(self, pc: RTCPeerConnection) -> None:
        """Both descriptions are set: take over the encoders and start watching the link."""
        if self._task is not None:
            return
        for transceiver in pc.getTransceivers():
            receiver = transceiver.receiver
            if transceiver.kind == "video" and hasattr(receiver, "_RTCRtpReceiver__jitter_buffer"):
                receiver._RTCRtpReceiver__jitter_buffer = TimedJitterBuffer(VIDEO_JITTER_PACKETS)
        self.encoder = send_encoders.install(pc, self.options.policy.start_bitrate, self.options.max_size)
        if self.encoder is not None:
            self.encoder.paused = not self.options.video
        self._task = asyncio.ensure_future(self._run(pc))

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _run(self, pc: RTCPeerConnection) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            while pc.connectionState != "connected":
                if pc.connectionState in ("failed", "closed"):
                    return
                await asyncio.sleep(0.1)
            start = time.monotonic()
            self._controller = BandwidthController(self.options.policy, start=start, video=self.options.video and self.encoder is not None)
            while pc.connectionState == "connected":
                await asyncio.sleep(self.options.interval)
                self._step(await self._sample(pc, start))

    async def _sample(self, pc: RTCPeerConnection, start: float) -> LinkSample:
        """The link since the previous sample: a receiver report already read is not read again
        (aiortc keeps the last one of each sender until the next arrives)."""
        now = time.monotonic()
        losses: list[float] = []
        audio_loss: float | None = None
        rtts: list[float] = []
        last_report: datetime | None = None
        for sender in pc.getSenders():
            if sender.track is None:
                continue
            for stats in (await sender.getStats()).values():
                if getattr(stats, "type", None) != "remote-inbound-rtp":
                    continue
                if last_report is None or stats.timestamp > last_report:
                    last_report = stats.timestamp
                if self._reports.get(stats.id) == stats.timestamp:
                    continue
                self._reports[stats.id] = stats.timestamp
                losses.append(stats.fractionLost / 256)
                if sender.kind == "audio":
                    audio_loss = stats.fractionLost / 256
                if stats.roundTripTime is not None:
                    rtts.append(stats.roundTripTime)
        age = now - start if last_report is None else (datetime.now(UTC) - last_report).total_seconds()
        encoder = self.encoder
        sent_fps: float | None = None
        if encoder is not None:
            self._encoded = [*self._encoded[-(self.FPS_SAMPLES - 1):], (now, encoder.frames)]
            (then, before), (_, frames) = self._encoded[0], self._encoded[-1]
            sent_fps = (frames - before) / (now - then) if now > then else None
        return LinkSample(
            at=now,
            loss=max(losses) if losses else None,
            audio_loss=audio_loss,
            rtt=min(rtts) if rtts else None,
            remb=encoder.remb if encoder is not None else None,
            remote_fps=self.remote_fps,
            sent_fps=sent_fps,
            feedback_age=age,
        )

    def _step(self, sample: LinkSample) -> None:
        controller = self._controller
        assert controller is not None
        before = controller.mode
        decision = controller.update(sample)
        encoder = self.encoder
        if encoder is not None:
            encoder.paused = decision.mode is not Mode.VIDEO
            if decision.bitrate:
                encoder.bitrate = decision.bitrate
        self.samples = [*self.samples[-59:], (sample, decision.mode, decision.bitrate)]
        log.debug(
            "link: loss %s audio loss %s rtt %s remb %s fps sent %s decoded %s report age %.1f s -> %s %d bit/s",
            sample.loss, sample.audio_loss, sample.rtt, sample.remb, sample.sent_fps, sample.remote_fps, sample.feedback_age,
            decision.mode, decision.bitrate,
        )
        if decision.mode is not before:
            log.info("sending %s: %s", decision.mode.value, controller.reason)
            self._on_mode(decision.mode, controller.reason)
