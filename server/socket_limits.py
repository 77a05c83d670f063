"""Message rate limits for every websocket: a token bucket per socket and message kind.

Every frame a client sends counts against the bucket of its kind (the ``type`` of
the frame as the socket decoded it, once) before it is handled or answered, so a refused message counts like any
other and a flood costs one reply. A socket over a limit gets one
``rate_limited`` error naming the kind and is closed with 1008 (policy violation):
an honest client stays far below the limits in ``[limits]``, so going over them
means a broken or hostile client, and keeping it would cost everyone else.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections.abc import Callable, Mapping

from aiohttp import WSCloseCode

from server.config import LimitSettings

log = logging.getLogger(__name__)

CLOSE_CODE = WSCloseCode.POLICY_VIOLATION
CLOSE_REASON = b"rate limited"

# The kinds of a live socket (/ws/events, /ws/unit, /ws/operator); any other frame counts as a ping.
LIVE_KINDS = {"position": "position", "status": "status", "ack": "status"}
LIVE_DEFAULT = "ping"
# The kinds of a room socket (/ws/consults/{id}); any other frame counts as signaling.
ROOM_KINDS = {"chat": "chat"}
ROOM_DEFAULT = "signaling"


@dataclasses.dataclass(frozen=True, slots=True)
class Rate:
    per_s: float
    burst: int


@dataclasses.dataclass(slots=True)
class TokenBucket:
    """``rate.per_s`` tokens a second on average, at most ``rate.burst`` at once; it starts full."""

    rate: Rate
    tokens: float
    stamp: float

    @classmethod
    def full(cls, rate: Rate, now: float) -> TokenBucket:
        return cls(rate, float(rate.burst), now)

    def take(self, now: float) -> bool:
        self.tokens = min(float(self.rate.burst), self.tokens + (now - self.stamp) * self.rate.per_s)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


@functools.cache  # one table for every socket of a server
def rates(limits: LimitSettings) -> dict[str, Rate]:
    """Every kind's rate, as configured (shared: never changed)."""
    return {
        "position": Rate(limits.ws_position_per_s, limits.ws_position_burst),
        "status": Rate(limits.ws_status_per_s, limits.ws_status_burst),
        "ping": Rate(limits.ws_ping_per_s, limits.ws_ping_burst),
        "signaling": Rate(limits.ws_signaling_per_s, limits.ws_signaling_burst),
        "chat": Rate(limits.ws_chat_per_s, limits.ws_chat_burst),
    }


class SocketLimits:
    """One socket's buckets: ``over(frame)`` is None while the frame is within its kind's limit."""

    __slots__ = ("_rates", "_kinds", "_default", "_clock", "_buckets")  # one per live socket

    def __init__(
        self, limits: LimitSettings, kinds: Mapping[str, str], default: str, clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rates = rates(limits)
        self._kinds, self._default, self._clock = kinds, default, clock
        self._buckets: dict[str, TokenBucket] = {}

    def over(self, decoded: object) -> str | None:
        """None if a frame that decoded to ``decoded`` (anything, a refusal too) may be handled;
        else the refusal to send before closing the socket."""
        tag = decoded.get("type") if isinstance(decoded, dict) else None
        kind = self._kinds.get(tag, self._default) if isinstance(tag, str) else self._default
        now = self._clock()
        bucket = self._buckets.get(kind)
        if bucket is None:
            bucket = self._buckets[kind] = TokenBucket.full(self._rates[kind], now)
        if bucket.take(now):
            return None
        rate = bucket.rate
        log.warning("closing a websocket over its %s limit (%g a second, %d at once)", kind, rate.per_s, rate.burst)
        return f"too many {kind} messages: at most {rate.per_s:g} a second, {rate.burst} at once; closing"


def live_limits(limits: LimitSettings) -> SocketLimits:
    return SocketLimits(limits, LIVE_KINDS, LIVE_DEFAULT)


def room_limits(limits: LimitSettings) -> SocketLimits:
    return SocketLimits(limits, ROOM_KINDS, ROOM_DEFAULT)
