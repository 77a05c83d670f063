"""Media sources for a consult peer: a synthetic camera and microphone, or a file.

`SyntheticSource` needs no device: a video track drawing a bright bar that moves
across a grey frame (so an encoder has real motion to code, and a human can see
that frames flow) and an audio track playing a 440 Hz tone. Both are paced by
the wall clock like aiortc's own dummy tracks. `file_source` plays a file
through aiortc's `MediaPlayer` (looped when the format allows it).
"""

from __future__ import annotations

import array
import asyncio
import fractions
import math
import os
import time
from typing import Any, Protocol

from aiortc.contrib.media import MediaPlayer
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame, VideoFrame

__all__ = ["BusyTrack", "MediaSource", "MovingBarTrack", "Pacer", "SyntheticSource", "ToneTrack", "file_source"]

VIDEO_CLOCK = 90_000
AUDIO_RATE = 48_000
AUDIO_PTIME = 0.020


class MediaSource(Protocol):
    """What a peer sends: an audio and a video track (either may be missing)."""

    @property
    def audio(self) -> Any: ...

    @property
    def video(self) -> Any: ...


class Pacer:
    """Sleeps so that tick ``n`` happens ``n * period`` after the first one."""

    def __init__(self, period: float) -> None:
        self._period = period
        self._start: float | None = None
        self.count = 0

    async def tick(self) -> int:
        now = time.monotonic()
        if self._start is None:
            self._start = now
        else:
            self.count += 1
            await asyncio.sleep(max(0.0, self._start + self.count * self._period - now))
        return self.count


class MovingBarTrack(MediaStreamTrack):
    """A synthetic camera: a white bar sweeping over a grey background."""

    kind = "video"

    def __init__(self, width: int = 320, height: int = 240, fps: int = 30) -> None:
        super().__init__()
        if width < 16 or height < 16 or width % 2 or height % 2:
            raise ValueError("width and height must be even and at least 16")
        if not 1 <= fps <= 60:
            raise ValueError("fps must be in 1..60")
        self._width, self._height, self._fps = width, height, fps
        self._pacer = Pacer(1 / fps)

    async def recv(self) -> VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        n = await self._pacer.tick()
        frame = VideoFrame(width=self._width, height=self._height, format="yuv420p")
        luma = frame.planes[0]
        stride = luma.line_size
        bar = self._width // 10
        x = (n * 4) % (self._width - bar)
        row = bytes([60]) * x + bytes([235]) * bar + bytes([60]) * (stride - x - bar)
        luma.update(row * self._height)
        for plane in frame.planes[1:]:
            plane.update(bytes([128]) * plane.buffer_size)
        frame.pts = n * VIDEO_CLOCK // self._fps
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        return frame


class BusyTrack(MovingBarTrack):
    """A synthetic camera VP8 cannot compress: the bar over fresh grain every frame, like a
    shaky phone camera in a dim room (about 1.4 Mbit/s at 320x240 when the encoder may)."""

    GRAIN = 16  # luma levels either side of the picture

    def __init__(self, width: int = 320, height: int = 240, fps: int = 30) -> None:
        super().__init__(width, height, fps)
        spread = 2 * self.GRAIN + 1
        self._ground = bytes(60 - self.GRAIN + b * spread // 256 for b in range(256))
        self._bar = bytes(219 - self.GRAIN + b * spread // 256 for b in range(256))

    async def recv(self) -> VideoFrame:
        frame = await super().recv()
        luma = frame.planes[0]
        stride, width, bar = luma.line_size, self._width, self._width // 10
        x = bytes(luma)[:stride].index(235)  # where the moving bar is in this frame
        grain = os.urandom(stride * self._height)
        rows = []
        for start in range(0, len(grain), stride):
            row = grain[start : start + stride]
            ground, lit = row[:x].translate(self._ground), row[x : x + bar].translate(self._bar)
            rows.append(ground + lit + row[x + bar : width].translate(self._ground) + row[width:])
        luma.update(b"".join(rows))
        return frame


class ToneTrack(MediaStreamTrack):
    """A synthetic microphone: a steady sine tone, 48 kHz mono, 20 ms frames."""

    kind = "audio"

    def __init__(self, frequency: float = 440.0, volume: float = 0.2) -> None:
        super().__init__()
        if not 20 <= frequency <= 20_000 or not 0 <= volume <= 1:
            raise ValueError("frequency must be 20..20000 Hz and volume 0..1")
        # One second of samples; an integer frequency makes it loop seamlessly.
        samples = array.array(
            "h",
            (
                int(32767 * volume * math.sin(2 * math.pi * frequency * i / AUDIO_RATE))
                for i in range(AUDIO_RATE)
            ),
        )
        self._second = samples.tobytes()
        self._samples = int(AUDIO_PTIME * AUDIO_RATE)
        self._pacer = Pacer(AUDIO_PTIME)

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        n = await self._pacer.tick()
        start = (n * self._samples) % AUDIO_RATE
        chunk = self._second[2 * start : 2 * (start + self._samples)]
        frame = AudioFrame(format="s16", layout="mono", samples=self._samples)
        frame.planes[0].update(chunk)
        frame.pts = n * self._samples
        frame.sample_rate = AUDIO_RATE
        frame.time_base = fractions.Fraction(1, AUDIO_RATE)
        return frame


class SyntheticSource:
    """A moving-bar camera (``busy``: over grain) and a tone, for kiosks without devices and for tests."""

    def __init__(self, width: int = 320, height: int = 240, fps: int = 30, *, busy: bool = False) -> None:
        self.video = (BusyTrack if busy else MovingBarTrack)(width, height, fps)
        self.audio = ToneTrack()

    def stop(self) -> None:
        self.video.stop()
        self.audio.stop()


def file_source(path: str, *, loop: bool = True) -> Any:
    """A `MediaPlayer` for ``path`` (its ``audio``/``video`` may be None)."""
    return MediaPlayer(path, loop=loop)
