"""A video receive buffer that gives up on a lost packet after a time, not after a count.

aiortc's `JitterBuffer` holds every packet behind a hole until the hole is filled (a
retransmission) or ``capacity`` packets have piled up behind it; only then does it drop
the broken frame and ask for a keyframe. The count is a time that depends on the link: at
the 5 video packets a second of a 2G bearer, 128 packets are 25 s without a picture after
one keyframe packet lost twice, while a clean link fills them in a quarter of a second.
`TimedJitterBuffer` also gives up once the hole has waited ``max_wait`` seconds, time
enough for a retransmission across two weak links and their queues.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtp import RtpPacket

__all__ = ["HOLE_WAIT", "TimedJitterBuffer"]

#: Seconds a hole may wait for its retransmission: a 2G path's round trip (0.6 s) and its two full queues (0.5 s each).
HOLE_WAIT = 2.0


class TimedJitterBuffer(JitterBuffer):
    def __init__(self, capacity: int, *, max_wait: float = HOLE_WAIT, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(capacity=capacity, is_video=True)
        self.max_wait = max_wait
        self._clock = clock
        self._hole_since: float | None = None  # when a packet first waited behind the missing one at the origin

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        pli, frame = super().add(packet)
        hole = None if frame is not None else self._hole()
        if hole is None:
            self._hole_since = None
            return pli, frame
        now = self._clock()
        if self._hole_since is None:
            self._hole_since = now
        if now - self._hole_since < self.max_wait:
            return pli, frame
        # Drop the broken frame: up to the first packet that arrived after the hole and the rest of its frame
        # (whose beginning may be what is missing); the next frames need a keyframe, which the PLI asks for.
        self._hole_since = None
        if self.smart_remove(hole + 1):  # nothing left: the next packet starts the buffer again
            self._origin = None
            return True, None
        return True, self._remove_frame(packet.sequence_number)

    def _hole(self) -> int | None:
        """Where the first packet behind a hole lies from the origin (None: no packet waits behind one)."""
        if self._origin is None:
            return None
        missing = False
        for n in range(self.capacity):
            present = self._packets[(self._origin + n) % self.capacity] is not None
            if present and missing:
                return n
            missing = missing or not present
        return None
