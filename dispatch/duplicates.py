"""Duplicate calls and repeat prank numbers, flagged at intake.

Several people often call about one road accident; the operator should
link the new call to the open incident rather than send a second unit.
And a large share of 119 traffic is pranks: numbers that pranked before
are flagged so the operator is warned, but a call is never blocked, since
the next call from that number may be real.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from dispatch._checks import check_aware, check_duration, check_int, check_positive
from dispatch.call import normalize_phone
from dispatch.errors import InvalidInput
from dispatch.geo import Point, geodesic_m
from dispatch.ids import IncidentId, incident_id

__all__ = [
    "DuplicateReason",
    "DuplicateRules",
    "DuplicateWarning",
    "OpenIncident",
    "PrankFlag",
    "find_duplicates",
    "prank_flag",
]


@dataclass(frozen=True, slots=True)
class DuplicateRules:
    """Thresholds; the server builds this from config."""

    radius_m: float = 300.0
    window: timedelta = timedelta(minutes=20)
    # People call back ("where is the ambulance?") for a while after the first call.
    caller_window: timedelta = timedelta(hours=1)
    prank_threshold: int = 2
    prank_window: timedelta = timedelta(days=30)

    def __post_init__(self) -> None:
        object.__setattr__(self, "radius_m", check_positive(self.radius_m, "radius_m"))
        check_duration(self.window, "window")
        check_duration(self.caller_window, "caller_window")
        check_int(self.prank_threshold, "prank_threshold", minimum=1)
        check_duration(self.prank_window, "prank_window")


@dataclass(frozen=True, slots=True)
class OpenIncident:
    """What duplicate detection needs to know about an earlier incident.

    Open ones match by place and by number; a closed one (``closed_at`` set)
    only by number: a caller who rings again just after the case was closed
    is usually calling about it.
    """

    id: IncidentId
    created_at: datetime
    caller_phone: str
    location: Point | None = None
    closed_at: datetime | None = None

    def __post_init__(self) -> None:
        incident_id(self.id, "id")
        check_aware(self.created_at, "created_at")
        if self.closed_at is not None:
            check_aware(self.closed_at, "closed_at")
        object.__setattr__(self, "caller_phone", normalize_phone(self.caller_phone, "caller_phone"))
        if self.location is not None and not isinstance(self.location, Point):
            raise InvalidInput("location", "must be a Point")


class DuplicateReason(enum.Enum):
    NEARBY = "nearby"  # an open incident close by, recently
    SAME_CALLER = "same_caller"  # the same number called recently about an open incident
    SAME_CALLER_CLOSED = "same_caller_closed"  # the same number, soon after its incident was closed


@dataclass(frozen=True, slots=True)
class DuplicateWarning:
    incident_id: IncidentId
    reason: DuplicateReason
    distance_m: float | None  # None when either location is unknown

    def to_dict(self) -> dict[str, object]:
        return {
            "incident_id": self.incident_id,
            "reason": self.reason.value,
            "distance_m": self.distance_m,
        }


def find_duplicates(
    phone: str,
    location: Point | None,
    at: datetime,
    open_incidents: Iterable[OpenIncident],
    rules: DuplicateRules = DuplicateRules(),
) -> list[DuplicateWarning]:
    """Warnings for a new call: one per (incident, reason) that matches.

    Time windows are symmetric around ``at``: two operators taking calls
    about the same crash a few seconds apart must see each other. Sorted
    nearest first (unknown distance last), then by incident id and reason.
    The caller passes only incidents other than the one being checked. The
    caller window of a closed incident runs from its closing.
    """
    phone = normalize_phone(phone)
    check_aware(at, "at")
    warnings: list[DuplicateWarning] = []
    for incident in open_incidents:
        gap = abs(at - incident.created_at)
        closed = incident.closed_at is not None
        recent = not closed and gap <= rules.window
        caller_gap = abs(at - incident.closed_at) if incident.closed_at is not None else gap
        same_caller = incident.caller_phone == phone and caller_gap <= rules.caller_window
        if not (recent or same_caller):
            continue  # skip the geodesic for incidents outside both windows
        metres = (
            geodesic_m(location, incident.location)
            if location is not None and incident.location is not None
            else None
        )
        if recent and metres is not None and metres <= rules.radius_m:
            warnings.append(DuplicateWarning(incident.id, DuplicateReason.NEARBY, metres))
        if same_caller:
            reason = DuplicateReason.SAME_CALLER_CLOSED if closed else DuplicateReason.SAME_CALLER
            warnings.append(DuplicateWarning(incident.id, reason, metres))
    warnings.sort(
        key=lambda w: (
            w.distance_m is None,
            w.distance_m if w.distance_m is not None else 0.0,
            w.incident_id,
            w.reason.value,
        )
    )
    return warnings


@dataclass(frozen=True, slots=True)
class PrankFlag:
    """A number with at least ``threshold`` prank calls since ``since``. Warn, never block."""

    phone: str
    prank_count: int
    since: datetime
    threshold: int


def prank_flag(
    phone: str,
    prank_call_times: Iterable[datetime],
    now: datetime,
    rules: DuplicateRules = DuplicateRules(),
) -> PrankFlag | None:
    """Flag ``phone`` if its calls marked prank within the window reach the threshold.

    ``prank_call_times`` are the times of earlier calls from this number that
    operators marked as prank (the server selects them by number).
    """
    phone = normalize_phone(phone)
    check_aware(now, "now")
    since = now - rules.prank_window
    count = sum(1 for t in prank_call_times if since <= check_aware(t, "prank_call_times") <= now)
    if count >= rules.prank_threshold:
        return PrankFlag(phone=phone, prank_count=count, since=since, threshold=rules.prank_threshold)
    return None
