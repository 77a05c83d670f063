"""The adaptive video encoder: below aiortc's bitrate floor, a smaller picture when the bitrate is low, nothing while
paused and a keyframe after, and time that never runs backwards when a file source loops."""

from __future__ import annotations

import fractions

from aiortc.codecs.vpx import MIN_BITRATE, Vp8Encoder
from av import VideoFrame

from signaling.send_encoders import AdaptiveVideoEncoder


def frame(n: int, width: int = 320, height: int = 240, fps: int = 30) -> VideoFrame:
    picture = VideoFrame(width=width, height=height, format="yuv420p")
    for plane in picture.planes:
        plane.update(bytes([(n * 7) % 256]) * plane.buffer_size)
    picture.pts, picture.time_base = n * 90_000 // fps, fractions.Fraction(1, 90_000)
    return picture


def keyframe(payloads: list[bytes]) -> bool:
    """VP8 payload descriptor (4 bytes with a 15-bit picture id), then the frame tag: bit 0 clear on a keyframe."""
    return not payloads[0][4] & 0x01


def test_the_bitrate_goes_below_aiortcs_floor_and_remb_is_only_noted() -> None:
    inner = Vp8Encoder()
    encoder = AdaptiveVideoEncoder(inner, 60_000)
    encoder.target_bitrate = 900_000  # what aiortc's sender does with a REMB
    encoder.encode(frame(0))
    assert encoder.remb == 900_000 and encoder.target_bitrate == 60_000
    assert inner.codec is not None and inner.codec.bit_rate == 60_000 < MIN_BITRATE


def test_a_low_bitrate_sends_a_smaller_picture_and_max_size_caps_it() -> None:
    encoder = AdaptiveVideoEncoder(Vp8Encoder(), 1_000_000)
    encoder.encode(frame(0))
    assert encoder.size == (320, 240)
    encoder.bitrate = 100_000
    encoder.encode(frame(1))
    assert encoder.size == (160, 120)
    capped = AdaptiveVideoEncoder(Vp8Encoder(), 1_000_000, max_size=(160, 160))
    capped.encode(frame(0))
    assert capped.size == (160, 120)


def test_a_bitrate_at_the_edge_of_a_larger_picture_keeps_the_smaller_one() -> None:
    encoder = AdaptiveVideoEncoder(Vp8Encoder(), 150_000)
    encoder.encode(frame(0))
    assert encoder.size == (160, 120)
    encoder.bitrate = 240_000  # just fills 320x240 at 30 frames/s: no room for the link's other traffic
    encoder.encode(frame(1))
    assert encoder.size == (160, 120)
    encoder.bitrate = 320_000
    encoder.encode(frame(2))
    assert encoder.size == (320, 240)


def test_paused_sends_nothing_and_the_first_frame_after_is_a_keyframe() -> None:
    encoder = AdaptiveVideoEncoder(Vp8Encoder(), 300_000)
    assert keyframe(encoder.encode(frame(0))[0])
    assert not keyframe(encoder.encode(frame(1))[0])
    encoder.paused = True
    assert encoder.encode(frame(2))[0] == []
    encoder.paused = False
    assert keyframe(encoder.encode(frame(3))[0])
    assert encoder.frames == 3


def test_a_looping_source_keeps_time_moving_forward_across_a_new_encoder() -> None:
    encoder = AdaptiveVideoEncoder(Vp8Encoder(), 300_000)
    stamps = [encoder.encode(frame(n))[1] for n in range(10)]
    encoder.bitrate = 150_000  # aiortc re-creates its codec for this
    stamps += [encoder.encode(frame(n))[1] for n in range(5)]  # the file starts again
    assert stamps == sorted(stamps) and len(set(stamps)) == 15
