"""Looking inside a recording with PyAV (no numpy): what each stream carries."""

from __future__ import annotations

import array
from dataclasses import dataclass
from pathlib import Path

import av


@dataclass(frozen=True)
class StreamContent:
    kind: str  # "audio" or "video"
    codec: str
    frames: int
    end: float  # seconds: the timestamp of the last frame
    peaks: tuple[int, int]  # brightest luma of the left/right half (video, 16 is black); loudest sample (audio)


def recorded_content(path: Path) -> tuple[float, list[StreamContent]]:
    """The duration in seconds and, per stream in order, its codec, frames and peak."""
    with av.open(str(path)) as container:
        assert container.duration is not None
        duration = container.duration / av.time_base
        streams = list(container.streams)
        frames = [0] * len(streams)
        ends = [0.0] * len(streams)
        peaks = [[0, 0] for _ in streams]
        resamplers = [av.AudioResampler(format="s16", layout="mono", rate=48000) for _ in streams]
        for packet in container.demux():
            index = packet.stream.index
            for frame in packet.decode():
                frames[index] += 1
                if frame.time is not None:
                    ends[index] = max(ends[index], frame.time)
                if isinstance(frame, av.VideoFrame):
                    luma, stride, half = bytes(frame.planes[0]), frame.planes[0].line_size, frame.width // 2
                    rows = [luma[r * stride : r * stride + frame.width] for r in range(frame.height)]
                    for side in (0, 1):
                        brightest = max(max(row[side * half : (side + 1) * half]) for row in rows)
                        peaks[index][side] = max(peaks[index][side], brightest)
                else:
                    for chunk in resamplers[index].resample(frame):
                        samples = array.array("h", bytes(chunk.planes[0])[: 2 * chunk.samples])
                        loudest = max((abs(x) for x in samples), default=0)
                        peaks[index] = [max(peaks[index][0], loudest)] * 2
        content = [
            StreamContent(s.type, s.codec_context.name, frames[i], ends[i], (peaks[i][0], peaks[i][1]))
            for i, s in enumerate(streams)
        ]
    return duration, content


def assert_both_doctors_recorded(path: Path) -> float:
    """The recorder's file holds both doctors' picture and sound, not filler: one
    VP8 picture running to the end (at 5 fps at least: a loaded machine drops
    frames), in which each doctor's half shows the synthetic camera's bright bar
    (black is luma 16), and one Opus stream per doctor whose 20 ms frames cover the
    duration, carrying its tone (silence is 0). Returns the duration in seconds."""
    duration, streams = recorded_content(path)
    assert [(s.kind, s.codec) for s in streams] == [("video", "vp8"), ("audio", "opus"), ("audio", "opus")], streams
    video, *audio = streams
    assert video.frames >= 5 * duration and video.end >= duration - 0.5, (video, duration)
    assert min(video.peaks) > 200, video  # left half and right half
    for stream in audio:
        assert stream.frames >= 0.8 * 50 * duration, (stream, duration)
        assert max(stream.peaks) > 2000, stream
    return duration
