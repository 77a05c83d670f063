"""The consented recorder: an aiortc participant that writes a consult to one file.

`ConsultRecorder` joins the room as the ``recorder`` member (the room admits it
only while every doctor consents), receives each doctor's audio and video
through a `ConsultPeer` (the doctors offer to it; it only answers) and writes
them with aiortc's `MediaRecorder`.

The file is **WebM: VP8 video and Opus audio**: one video stream showing both
doctors side by side (640x240, the requester on the left) and one audio stream
per doctor (three streams). WebM rather than MP4 because VP8 and Opus are the
codecs WebRTC already carries (Chromium prefers VP8 towards aiortc), libvpx
costs about 1/1.4 of libx264's CPU here and Opus takes the 48 kHz WebRTC
audio as it is, the codecs are royalty-free for a public health office, and
browsers play the file directly. One picture rather than a video stream per
doctor because `MediaRecorder` cannot write two video streams: it sizes each
stream from its first frame, but the container opens every encoder when the
first packet is written, and a later stream then fails ("Cannot change width
after codec is open").

Between the network and the file sit paced sources of our own: the picture
(each doctor's latest frame scaled to 320x240, black while nothing arrives) and
one audio source per doctor (resampled to 48 kHz stereo, silence filling gaps),
with timestamps of their own. A doctor who reconnects (a new RTCPeerConnection,
new tracks) therefore continues in the same streams, and the file's clock never
jumps. The audio waits for the first picture, so the video stream has its size
before anything is written.

Recording stops and the file is flushed on `ConsultRecorder.stop`, when a doctor
says ``bye``, when the room reports that recording is no longer allowed, or
when the room ends the recorder's membership.

`MediaRecorder` encodes in the event loop that runs it, with libvpx's default
(not real-time) settings it gives no way to change: 13-40 ms per 640x240 frame
on the CI machine (aiortc's own real-time VP8 encoder: about 6 ms per 640x480
frame). Hence the small picture, and the server runs each recorder as a process
of its own:
``python -m server.recorder_process``, which keeps that work off the server's
loop and a codec crash out of the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import av
from aiortc.contrib.media import MediaRecorder
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame, VideoFrame

from .ids import UserId
from .members import MemberRole
from .messages import Bye
from .peer import ConsultPeer, PeerRefused

__all__ = ["FORMAT", "SUFFIX", "ConsultRecorder", "RecordingResult"]

log = logging.getLogger(__name__)

FORMAT = "webm"
SUFFIX = ".webm"
AUDIO_RATE = 48_000
AUDIO_SAMPLES = 960  # 20 ms
SAMPLE_BYTES = 4  # s16 stereo
MAX_BUFFERED_SAMPLES = 10 * AUDIO_SAMPLES
DOCTORS = (MemberRole.REQUESTER, MemberRole.SPECIALIST)
#: Each doctor's part of the recorded picture (two side by side: 640x240).
TILE = (320, 240)


@dataclass(frozen=True, slots=True)
class RecordingResult:
    path: Path
    started_at: float  # time.time()
    ended_at: float
    bytes: int
    frames_received: int


async def _sleep_until(deadline: float) -> None:
    delay = deadline - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)


class _Timed(MediaStreamTrack):
    """A source that can be told when to end: it then delivers what is due up to
    that moment (so every stream reaches the same end) and ends."""

    def __init__(self) -> None:
        super().__init__()
        self._start: float | None = None
        self._end_at: float | None = None
        self.ended = asyncio.Event()

    def finish(self, at: float) -> None:
        self._end_at = at
        if self._start is None:
            self.ended.set()

    async def _wait_for(self, due_at: float) -> None:
        """Sleep until the next frame is due, or end (MediaStreamError) at the end."""
        if self._end_at is not None and due_at >= self._end_at:
            self.ended.set()
            raise MediaStreamError
        await _sleep_until(due_at)


class _Tiles(_Timed):
    """The recorded picture: each doctor's latest frame side by side (requester on
    the left), black where a doctor sends nothing, paced at ``fps``."""

    kind = "video"

    def __init__(self, fps: int) -> None:
        super().__init__()
        self._fps = fps
        self._latest: dict[MemberRole, VideoFrame] = {}
        self._pts = -1
        self.first_out = asyncio.Event()
        self.received = 0

    @property
    def started_at(self) -> float:
        return time.monotonic() if self._start is None else self._start

    def put(self, role: MemberRole, frame: VideoFrame) -> None:
        self._latest[role] = frame
        self.received += 1

    def _tile(self, role: MemberRole) -> VideoFrame:
        width, height = TILE
        latest = self._latest.get(role)
        if latest is not None:
            return latest.reformat(width=width, height=height, format="yuv420p")
        black = VideoFrame(width=width, height=height, format="yuv420p")
        for plane, value in zip(black.planes, (16, 128, 128), strict=True):
            plane.update(bytes([value]) * plane.buffer_size)
        return black

    async def recv(self) -> VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        else:
            await self._wait_for(self._start + (self._pts + 1) / self._fps)
        # Timestamps from the wall clock: when encoding falls behind, frames are
        # dropped, and the picture never drifts from the sound.
        now = time.monotonic()
        self._pts = max(self._pts + 1, int((now - self._start) * self._fps))
        tiles = [self._tile(role) for role in DOCTORS]
        frame = VideoFrame(width=TILE[0] * len(tiles), height=TILE[1], format="yuv420p")
        for index, plane in enumerate(frame.planes):
            sources = [(bytes(tile.planes[index]), tile.planes[index].line_size) for tile in tiles]
            width = tiles[0].planes[index].width
            pad = bytes(plane.line_size - width * len(tiles))
            plane.update(
                b"".join(
                    b"".join(data[row * stride : row * stride + width] for data, stride in sources) + pad
                    for row in range(plane.height)
                )
            )
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, self._fps)
        # MediaRecorder sizes the stream from this first frame; the file's encoders
        # are opened when its first packet is written, so the audio waits for it.
        self.first_out.set()
        return frame


class _AudioSlot(_Timed):
    """One doctor's sound, 48 kHz stereo, in 20 ms frames (received sound, else
    silence) timed by the wall clock: a busy event loop delays frames but never
    makes the recording shorter or longer."""

    kind = "audio"

    def __init__(self, picture: _Tiles) -> None:
        super().__init__()
        self._picture = picture
        self._buffer = bytearray()  # received s16 stereo samples not yet recorded
        self._resampler = av.AudioResampler(format="s16", layout="stereo", rate=AUDIO_RATE)
        self._pts = 0
        self.received = 0

    def put(self, frame: AudioFrame) -> None:
        for chunk in self._resampler.resample(frame):
            self._buffer += bytes(chunk.planes[0])[: chunk.samples * SAMPLE_BYTES]
        excess = len(self._buffer) - MAX_BUFFERED_SAMPLES * SAMPLE_BYTES
        if excess > 0:
            del self._buffer[:excess]  # keep the latest 200 ms
        self.received += 1

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            # The picture's first frame sizes the video stream before anything is
            # written; the sound then starts on the picture's clock (silence first).
            await self._picture.first_out.wait()
            self._start = self._picture.started_at
        # Behind after a stall? Then no sleep, and no yield either: the frames due
        # are made at once (the encoder takes exactly 20 ms frames).
        await self._wait_for(self._start + self._pts / AUDIO_RATE)
        size = AUDIO_SAMPLES * SAMPLE_BYTES
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        frame = AudioFrame(format="s16", layout="stereo", samples=AUDIO_SAMPLES)
        frame.planes[0].update(data + bytes(frame.planes[0].buffer_size - len(data)))
        frame.pts = self._pts
        frame.sample_rate = AUDIO_RATE
        frame.time_base = fractions.Fraction(1, AUDIO_RATE)
        self._pts += AUDIO_SAMPLES
        return frame


class ConsultRecorder:
    """Record one consult to ``path`` (a ``.webm`` file, created once the room
    admits the recorder). ``room``/``token``: as for `ConsultPeer`."""

    def __init__(
        self,
        room: str,
        token: str,
        path: Path,
        *,
        ice_host_addresses: Sequence[str] | None = None,
        fps: int = 15,
        join_timeout: float = 10.0,
    ) -> None:
        if path.suffix != SUFFIX:
            raise ValueError(f"the recording must be a {SUFFIX} file")
        self.path = path
        self._join_timeout = join_timeout
        self._stop = asyncio.Event()
        if not 1 <= fps <= 30:
            raise ValueError("fps must be in 1..30")
        self._video = _Tiles(fps)
        self._audio = {role: _AudioSlot(self._video) for role in DOCTORS}
        self.peer = ConsultPeer(
            room,
            token,
            source=None,
            ice_host_addresses=ice_host_addresses,
            frame_sink=self._on_frame,
            on_bye=self._on_bye,
            on_recording=self._on_recording,
            adapt=None,  # it sends nothing, and its frame counts are no doctor's view
            role=MemberRole.RECORDER,  # it never offers: it prepares the connection it answers the first doctor on
        )

    @property
    def frames_received(self) -> int:
        return self._video.received + sum(slot.received for slot in self._audio.values())

    def stop(self) -> None:
        """Stop recording; `run` flushes the file and returns."""
        self._stop.set()

    def _on_frame(self, user: UserId, role: MemberRole, kind: str, frame: AudioFrame | VideoFrame) -> None:
        if isinstance(frame, VideoFrame) and role in DOCTORS:
            self._video.put(role, frame)
        elif isinstance(frame, AudioFrame) and role in self._audio:
            self._audio[role].put(frame)

    def _on_bye(self, bye: Bye) -> None:
        log.info("%s said bye: the recording stops", bye.sender)
        self._stop.set()

    def _on_recording(self, allowed: bool) -> None:
        if not allowed:
            log.info("recording consent was withdrawn: the recording stops")
            self._stop.set()

    async def _close(self, recorder: MediaRecorder) -> None:
        """End every stream at this moment, then flush and close the file."""
        end = time.monotonic()
        slots: list[_Timed] = [self._video, *self._audio.values()]
        for slot in slots:
            slot.finish(end)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(slot.ended.wait() for slot in slots)), 2.0)
        await recorder.stop()
        for slot in slots:
            slot.stop()

    async def run(self) -> RecordingResult | None:
        """Join and record until stopped. None if the room never admitted the recorder
        (no file is made then); `PeerRefused` is not raised, it just ends the recording."""
        peer_task = asyncio.create_task(self.peer.run())
        recorder: MediaRecorder | None = None
        started = time.time()
        try:
            async with asyncio.timeout(self._join_timeout):
                while self.peer.welcome is None and not peer_task.done() and not self._stop.is_set():
                    await asyncio.sleep(0.02)
            if self.peer.welcome is None:
                return None
            recorder = MediaRecorder(str(self.path), format=FORMAT)
            recorder.addTrack(self._video)
            for role in DOCTORS:
                recorder.addTrack(self._audio[role])
            await recorder.start()
            started = time.time()
            log.info("recording consult %s to %s", self.peer.welcome.consult, self.path)
            stop_task = asyncio.create_task(self._stop.wait())
            await asyncio.wait({peer_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
            stop_task.cancel()
        except TimeoutError:
            log.warning("the room did not admit the recorder within %.0f s", self._join_timeout)
            return None
        finally:
            if recorder is not None:
                await self._close(recorder)
            await self.peer.stop()
            with contextlib.suppress(PeerRefused):
                await peer_task
        ended = time.time()
        size = self.path.stat().st_size
        log.info("recording %s closed: %.1f s, %d bytes", self.path, ended - started, size)
        return RecordingResult(self.path, started, ended, size, self.frames_received)
