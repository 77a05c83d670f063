"""The per-socket message limits: a token bucket per kind, frames classified by their decoded type."""

from __future__ import annotations

from server.config import LimitSettings
from server.errors import BadRequest
from server.socket_limits import LIVE_DEFAULT, LIVE_KINDS, ROOM_DEFAULT, ROOM_KINDS, Rate, SocketLimits, TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_its_burst_then_its_rate() -> None:
    bucket = TokenBucket.full(Rate(per_s=2.0, burst=3), now=0.0)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.take(0.4) is False  # 0.8 of a token
    assert bucket.take(0.5) is True
    assert bucket.take(100.0) and bucket.take(100.0) and bucket.take(100.0)  # refills to the burst, no more
    assert bucket.take(100.0) is False


def test_each_kind_has_its_own_bucket_and_anything_unknown_counts_as_the_default() -> None:
    clock = Clock()
    limits = SocketLimits(LimitSettings(ws_ping_burst=2, ws_position_burst=1), LIVE_KINDS, LIVE_DEFAULT, clock)
    position = {"type": "position", "lat": 1, "lon": 2}
    assert limits.over(position) is None
    refusal = limits.over(position)
    assert refusal is not None and refusal.startswith("too many position messages: at most 5 a second, 1 at once")
    # Pings, garbage and unknown types share the ping bucket; positions being over does not touch it.
    assert limits.over({"type": "ping"}) is None
    assert limits.over(BadRequest("message is not valid JSON")) is None  # a refused frame counts too
    assert "too many ping messages" in (limits.over([1, 2]) or "")
    clock.now += 1.0
    assert limits.over({"type": "teleport"}) is None  # one ping token a second
    assert limits.over(position) is None


def test_room_frames_count_as_chat_or_signaling() -> None:
    limits = SocketLimits(LimitSettings(ws_chat_burst=1, ws_signaling_burst=1), ROOM_KINDS, ROOM_DEFAULT, Clock())
    assert limits.over({"type": "chat", "text": "halo"}) is None
    assert "chat" in (limits.over({"type": "chat", "text": "halo"}) or "")
    assert limits.over({"type": "candidate", "candidate": ""}) is None
    assert "signaling" in (limits.over({"type": "offer", "sdp": "v=0"}) or "")
