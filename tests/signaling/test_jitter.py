"""The video receive buffer gives up on a lost packet after a time: a slow link gets its picture back in seconds,
not after the buffer's 128 packets have piled up behind the hole."""

from __future__ import annotations

from aiortc.rtp import RtpPacket

from signaling.jitter import TimedJitterBuffer


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def packet(sequence_number: int, timestamp: int) -> RtpPacket:
    p = RtpPacket(payload_type=96, sequence_number=sequence_number, timestamp=timestamp)
    p._data = bytes([sequence_number])  # type: ignore[attr-defined]  # what aiortc's receiver depayloads into
    return p


def test_a_hole_filled_in_time_loses_nothing() -> None:
    clock = Clock()
    buffer = TimedJitterBuffer(128, max_wait=2.0, clock=clock)
    assert buffer.add(packet(0, 1000)) == (False, None)
    clock.now = 0.5
    assert buffer.add(packet(2, 2000)) == (False, None)  # 1 lost: frame 1000 may not be whole
    clock.now = 1.9
    assert buffer.add(packet(3, 3000)) == (False, None)
    pli, frame = buffer.add(packet(1, 1000))  # the retransmission
    assert not pli and frame is not None and (frame.timestamp, frame.data) == (1000, b"\x00\x01")


def test_a_hole_that_waits_too_long_drops_the_broken_frame_and_asks_for_a_keyframe() -> None:
    clock = Clock()
    buffer = TimedJitterBuffer(128, max_wait=2.0, clock=clock)
    assert buffer.add(packet(0, 1000)) == (False, None)
    _, frame = buffer.add(packet(1, 2000))
    assert frame is not None and frame.timestamp == 1000
    # Frame 2000's second packet (2) is lost and never comes again; five packets a second keep arriving behind it:
    # frames 4000 (3-5), 5000 (6-8), 6000 (9-11).
    for n, at in zip(range(3, 12), [0.2 * k for k in range(9)], strict=True):
        clock.now = at
        assert buffer.add(packet(n, 3000 + 1000 * (n // 3))) == (False, None), n
    clock.now = 2.2
    pli, frame = buffer.add(packet(12, 7000))
    # 2000 is broken, and 4000, the first frame after the hole, goes with it (its start may be what is missing);
    # 5000 is whole and comes out; a keyframe is asked for, since the frames after a lost one decode from it.
    assert pli and frame is not None and frame.timestamp == 5000, frame and frame.timestamp
    pli, frame = buffer.add(packet(13, 8000))  # and the buffer goes on from there
    assert not pli and frame is not None and frame.timestamp == 6000

