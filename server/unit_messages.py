"""What a field unit's phone may send on its socket: one frozen record per kind, parsed here only."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from typing import Any, Literal

from server.errors import InvalidField


@dataclasses.dataclass(frozen=True, slots=True)
class Ack:
    assignment_id: int
    type: Literal["ack"] = "ack"


@dataclasses.dataclass(frozen=True, slots=True)
class StatusReport:
    status: str
    reason: str | None
    assignment_id: int | None
    type: Literal["status"] = "status"


@dataclasses.dataclass(frozen=True, slots=True)
class PositionReport:
    lat: float
    lon: float
    accuracy: float | None
    at: dt.datetime
    type: Literal["position"] = "position"


@dataclasses.dataclass(frozen=True, slots=True)
class Ping:
    type: Literal["ping"] = "ping"


UnitMessage = Ack | StatusReport | PositionReport | Ping
FIELDS = {"ack": {"assignment_id", "ref"}, "status": {"status", "reason", "assignment_id", "ref"},
          "position": {"lat", "lon", "accuracy", "at", "ref"}, "ping": {"ref"}}
# A phone clock may be off a little; a fix far in the future or past is refused.
MAX_CLOCK_SKEW = dt.timedelta(minutes=5)
MAX_FIX_AGE = dt.timedelta(hours=1)


def parse(message: dict[str, Any], now: dt.datetime) -> UnitMessage:
    kind = message.get("type")
    if kind not in FIELDS:
        raise InvalidField(f"unknown message type {kind!r}; one of {', '.join(sorted(FIELDS))}", field="type")
    unknown = sorted(set(message) - FIELDS[kind] - {"type"})
    if unknown:
        raise InvalidField("is not a known field", field=unknown[0])
    if kind == "ack":
        return Ack(_int(message, "assignment_id", required=True))
    if kind == "status":
        status = message.get("status")
        if not isinstance(status, str):
            raise InvalidField("is required: the new status", field="status")
        reason = message.get("reason")
        if reason is not None and not isinstance(reason, str):
            raise InvalidField("must be a string", field="reason")
        return StatusReport(status, reason, _int(message, "assignment_id", required=False))
    if kind == "position":
        lat = _number(message, "lat", -90, 90)
        lon = _number(message, "lon", -180, 180)
        accuracy = None if message.get("accuracy") is None else _number(message, "accuracy", 0, 100_000)
        return PositionReport(lat, lon, accuracy, _time(message.get("at"), now))
    return Ping()


def _int(message: dict[str, Any], key: str, *, required: bool) -> Any:
    value = message.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidField("must be a positive integer", field=key)
    return value


def _number(message: dict[str, Any], key: str, low: float, high: float) -> float:
    value = message.get(key)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or not low <= value <= high:
        raise InvalidField(f"must be a number from {low} to {high}", field=key)
    return float(value)


def _time(value: object, now: dt.datetime) -> dt.datetime:
    if value is None:
        return now
    if not isinstance(value, str):
        raise InvalidField("must be an ISO 8601 time with a zone", field="at")
    try:
        at = dt.datetime.fromisoformat(value)
    except ValueError:
        raise InvalidField("must be an ISO 8601 time with a zone", field="at") from None
    if at.tzinfo is None:
        raise InvalidField("must carry a time zone", field="at")
    if not now - MAX_FIX_AGE <= at <= now + MAX_CLOCK_SKEW:
        raise InvalidField("is too far from the server's clock", field="at")
    return at
