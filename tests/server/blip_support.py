"""Helpers of the signaling-blip tests: when each received video frame arrived, and the longest wait between two."""

from __future__ import annotations

import time

from av import AudioFrame, VideoFrame

from signaling.ids import UserId
from signaling.members import MemberRole


class FrameClock:
    """A `ConsultPeer` frame sink that notes the arrival time of every video frame."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def sink(self, user: UserId, role: MemberRole, kind: str, frame: AudioFrame | VideoFrame) -> None:
        if kind == "video":
            self.times.append(time.monotonic())

    def longest_gap(self, start: float, end: float) -> float:
        """The longest time without a frame between ``start`` and ``end`` (both edges count)."""
        points = [start, *(t for t in self.times if start <= t <= end), end]
        return max(b - a for a, b in zip(points, points[1:], strict=False))
