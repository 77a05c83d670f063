"""The encoders an aiortc peer sends with: video the link can carry, voice at a voice's bitrate.

aiortc's VP8 encoder keeps its target between 250 kbit/s and 1.5 Mbit/s (whatever the
receiver's REMB says) and always encodes the picture at the size it is given; its Opus
encoder sends 96 kbit/s of stereo. On a 3G bearer that is more than the link carries, and
the picture stops. `AdaptiveVideoEncoder` wraps the encoder aiortc would use and takes its
orders from `signaling.bandwidth` instead:

* ``bitrate``: the target, below aiortc's floor when the link needs it (the floor is a
  setter's clamp; the value is written past it);
* the picture is scaled down (`bandwidth.scale_after`, and never above ``max_size``) before
  encoding, one encoder per link, so another link of the same peer keeps its own size;
* ``paused``: audio only, nothing is encoded; the first frame after it is a keyframe;
* a REMB from the receiver is only recorded (``remb``), for the controller to weigh;
* time never runs backwards: a file source that loops starts its timestamps again, which
  an encoder re-created for a new bitrate or size refuses; such frames get later times.

`install` puts them on a connection's senders once it is negotiated and before its first
frame (aiortc creates its encoder lazily, at the first frame, only if none is set).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from aiortc import RTCPeerConnection
from aiortc.codecs import get_encoder
from aiortc.codecs.base import Encoder
from aiortc.codecs.opus import OpusEncoder
from aiortc.mediastreams import VIDEO_TIME_BASE, convert_timebase
from av import VideoFrame
from av.frame import Frame
from av.packet import Packet

from .bandwidth import scale_after

__all__ = ["AdaptiveVideoEncoder", "install"]

log = logging.getLogger(__name__)

VOICE_BITRATE = 32_000  # Opus VoIP mono-quality voice; aiortc's default is 96 kbit/s


def _even(value: float) -> int:
    return max(2, int(value) // 2 * 2)


class AdaptiveVideoEncoder(Encoder):
    """aiortc's encoder for the negotiated codec, sized and paced by the controller."""

    def __init__(self, inner: Encoder, bitrate: int, max_size: tuple[int, int] | None = None) -> None:
        self.inner = inner
        self.bitrate = bitrate
        self.max_size = max_size
        self.paused = False
        self.remb: int | None = None
        self.frames = 0
        self.size: tuple[int, int] | None = None  # of the last encoded picture
        self._scale: int | None = None  # the last picture's divisor of the source's width and height
        self._fps = 30.0
        self._last_pts: float | None = None
        self._offset = 0  # added to the source's timestamps (90 kHz) since it looped
        self._was_paused = False
        self._lock = threading.Lock()  # encode runs in aiortc's executor thread

    @property
    def target_bitrate(self) -> int:
        return self.bitrate

    @target_bitrate.setter
    def target_bitrate(self, bitrate: int) -> None:
        """aiortc's sender passes each REMB here: only noted, the controller decides."""
        self.remb = bitrate

    def encode(self, frame: Frame, force_keyframe: bool = False) -> tuple[list[bytes], int]:
        assert isinstance(frame, VideoFrame) and frame.pts is not None and frame.time_base is not None
        timestamp = convert_timebase(frame.pts, frame.time_base, VIDEO_TIME_BASE) + self._offset
        if self._last_pts is not None and timestamp <= self._last_pts:
            step = VIDEO_TIME_BASE.denominator // 30
            self._offset += int(self._last_pts) + step - timestamp
            timestamp = int(self._last_pts) + step
        self._track_fps(timestamp)
        with self._lock:
            if self.paused:
                self._was_paused = True
                return [], timestamp
            force_keyframe = force_keyframe or self._was_paused
            self._was_paused = False
            frame = self._resize(frame, timestamp)
            _set_bitrate(self.inner, self.bitrate)
            payloads, timestamp = self.inner.encode(frame, force_keyframe)
        if payloads:
            self.frames += 1
            self.size = (frame.width, frame.height)
        return payloads, timestamp

    def pack(self, packet: Packet) -> tuple[list[bytes], int]:  # type: ignore[type-arg]
        return self.inner.pack(packet)

    def _track_fps(self, timestamp: int) -> None:
        if self._last_pts is not None and timestamp > self._last_pts:
            instant = VIDEO_TIME_BASE.denominator / (timestamp - self._last_pts)
            self._fps = 0.9 * self._fps + 0.1 * min(60.0, instant)
        self._last_pts = timestamp

    def _resize(self, frame: VideoFrame, timestamp: int) -> VideoFrame:
        """``frame`` at the size to send, timed ``timestamp`` (a copy: other links share it)."""
        width, height = frame.width, frame.height
        if self.max_size is not None:
            fit = min(1.0, self.max_size[0] / width, self.max_size[1] / height)
            width, height = _even(width * fit), _even(height * fit)
        scale = self._scale = scale_after(self._scale, self.bitrate, width, height, self._fps)
        width, height = _even(width / scale), _even(height / scale)
        if (width, height) == (frame.width, frame.height) and not self._offset:
            return frame
        resized = frame.reformat(width=width, height=height, format="yuv420p")
        if resized is frame:
            resized = VideoFrame(width, height, "yuv420p")
            for mine, theirs in zip(resized.planes, frame.planes, strict=True):
                data, pad = bytes(theirs), bytes(mine.line_size - theirs.width)
                mine.update(b"".join(
                    data[row * theirs.line_size : row * theirs.line_size + theirs.width] + pad for row in range(theirs.height)
                ))  # fmt: skip
        resized.pts, resized.time_base = timestamp, VIDEO_TIME_BASE
        return resized


def _set_bitrate(encoder: Encoder, bitrate: int) -> None:
    """aiortc's VP8 and H.264 encoders clamp their ``target_bitrate`` setter to at least
    250 kbit/s; the private value behind it is what they configure the codec with."""
    private = f"_{type(encoder).__name__}__target_bitrate"
    if hasattr(encoder, private):
        setattr(encoder, private, bitrate)
    elif hasattr(encoder, "target_bitrate"):
        encoder.target_bitrate = bitrate


def _voice_encoder() -> OpusEncoder:
    encoder = OpusEncoder()
    encoder.codec.bit_rate = VOICE_BITRATE
    return encoder


def install(pc: RTCPeerConnection, bitrate: int, max_size: tuple[int, int] | None) -> AdaptiveVideoEncoder | None:
    """Give ``pc``'s senders our encoders; the video one (None if no video is sent)."""
    video: AdaptiveVideoEncoder | None = None
    for transceiver in pc.getTransceivers():
        sender = transceiver.sender
        codecs: list[Any] = getattr(transceiver, "_codecs", [])
        if sender.track is None or not codecs:
            continue
        current = getattr(sender, "_RTCRtpSender__encoder", "missing")
        if current == "missing":
            raise RuntimeError("aiortc's sender no longer takes an encoder before its first frame")
        if current is not None:
            log.warning("%s sender started before its encoder was set: not adapted", sender.kind)
            continue
        codec = codecs[0]
        if sender.kind == "video":
            video = AdaptiveVideoEncoder(get_encoder(codec), bitrate, max_size)
            sender._RTCRtpSender__encoder = video  # type: ignore[attr-defined]
        elif codec.mimeType.lower() == "audio/opus":
            sender._RTCRtpSender__encoder = _voice_encoder()  # type: ignore[attr-defined]
        log.debug("%s sender encodes %s", sender.kind, codec.mimeType)
    return video
