"""Response-time metrics: per-incident intervals and percentiles over many.

Percentiles use linear interpolation between closest ranks on the sorted
values, the "inclusive" method: for p in [0, 1] and n values,
``h = (n - 1) * p`` and the result is ``x[floor(h)] + (h - floor(h)) *
(x[floor(h) + 1] - x[floor(h)])``. It equals ``statistics.quantiles(...,
method="inclusive")``, numpy's default and Excel's PERCENTILE.INC; it also
works for a single value (which ``statistics.quantiles`` rejects before
Python 3.13).

NFPA 1225 asks that alarm processing (call answered -> units notified)
take at most 60 s for 90 % of calls; ``nfpa1225_check`` measures the share.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from dispatch._checks import check_aware, check_real
from dispatch.errors import InvalidInput

__all__ = [
    "Handover",
    "IncidentTimes",
    "IntervalSummary",
    "Nfpa1225Check",
    "ResponseIntervals",
    "intervals",
    "nfpa1225_check",
    "offload_by_hospital",
    "percentile",
    "summarize",
    "summarize_intervals",
]

NFPA1225_LIMIT_S = 60.0
NFPA1225_TARGET_SHARE = 0.90


@dataclass(frozen=True, slots=True)
class IncidentTimes:
    """The timestamps of one incident; None where it never happened.

    ``dispatched_at`` is the first assignment, ``acknowledged_at`` the first
    unit's acknowledgement, ``on_scene_at`` the first unit's arrival.
    """

    received_at: datetime
    dispatched_at: datetime | None = None
    acknowledged_at: datetime | None = None
    on_scene_at: datetime | None = None
    closed_at: datetime | None = None

    def __post_init__(self) -> None:
        check_aware(self.received_at, "received_at")
        for name in ("dispatched_at", "acknowledged_at", "on_scene_at", "closed_at"):
            value = getattr(self, name)
            if value is None:
                continue
            check_aware(value, name)
            if value < self.received_at:
                raise InvalidInput(name, "must not be before received_at")
        for name in ("acknowledged_at", "on_scene_at"):
            value = getattr(self, name)
            if value is None:
                continue
            if self.dispatched_at is None:
                raise InvalidInput(name, "needs dispatched_at")
            if value < self.dispatched_at:
                raise InvalidInput(name, "must not be before dispatched_at")


@dataclass(frozen=True, slots=True)
class ResponseIntervals:
    """Seconds; None where either end is missing."""

    call_to_dispatch_s: float | None
    dispatch_to_ack_s: float | None
    dispatch_to_on_scene_s: float | None
    call_to_close_s: float | None


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return (end - start).total_seconds()


def intervals(times: IncidentTimes) -> ResponseIntervals:
    return ResponseIntervals(
        call_to_dispatch_s=_seconds(times.received_at, times.dispatched_at),
        dispatch_to_ack_s=_seconds(times.dispatched_at, times.acknowledged_at),
        dispatch_to_on_scene_s=_seconds(times.dispatched_at, times.on_scene_at),
        call_to_close_s=_seconds(times.received_at, times.closed_at),
    )


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-quantile (0 <= p <= 1) by linear interpolation; see the module docstring."""
    p = check_real(p, "p")
    if not 0.0 <= p <= 1.0:
        raise InvalidInput("p", "must be between 0 and 1")
    if not values:
        raise InvalidInput("values", "must not be empty")
    ordered = sorted(check_real(v, "values") for v in values)
    h = (len(ordered) - 1) * p
    low = math.floor(h)
    if low + 1 >= len(ordered):
        return ordered[-1]
    return ordered[low] + (h - low) * (ordered[low + 1] - ordered[low])


@dataclass(frozen=True, slots=True)
class IntervalSummary:
    count: int  # values present (incidents where the interval is known)
    p50_s: float | None
    p90_s: float | None


def summarize(values: Iterable[float | None]) -> IntervalSummary:
    """p50 and p90 over the values present; missing ones (None) are skipped."""
    present = [v for v in values if v is not None]
    if not present:
        return IntervalSummary(0, None, None)
    return IntervalSummary(len(present), percentile(present, 0.5), percentile(present, 0.9))


def summarize_intervals(all_intervals: Sequence[ResponseIntervals]) -> dict[str, IntervalSummary]:
    """A summary per interval name (``call_to_dispatch_s``, ...)."""
    names = ("call_to_dispatch_s", "dispatch_to_ack_s", "dispatch_to_on_scene_s", "call_to_close_s")
    return {name: summarize(getattr(i, name) for i in all_intervals) for name in names}


@dataclass(frozen=True, slots=True)
class Nfpa1225Check:
    count: int  # dispatched calls considered
    within_limit: int
    share: float | None  # within_limit / count; None with no dispatched calls
    limit_s: float
    target_share: float

    @property
    def met(self) -> bool:
        return self.share is not None and self.share >= self.target_share


def nfpa1225_check(
    call_to_dispatch_s: Iterable[float | None],
    limit_s: float = NFPA1225_LIMIT_S,
    target_share: float = NFPA1225_TARGET_SHARE,
) -> Nfpa1225Check:
    """Share of dispatched calls (None skipped) dispatched within ``limit_s`` (inclusive)."""
    present = [check_real(v, "call_to_dispatch_s") for v in call_to_dispatch_s if v is not None]
    within = sum(1 for v in present if v <= limit_s)
    share = within / len(present) if present else None
    return Nfpa1225Check(len(present), within, share, limit_s, target_share)


@dataclass(frozen=True, slots=True)
class Handover:
    """A patient handed over at ``hospital``: the first unit's arrival (``at_hospital``) and the handover."""

    hospital: str
    arrived_at: datetime
    handed_over_at: datetime

    def __post_init__(self) -> None:
        check_aware(self.arrived_at, "arrived_at")
        check_aware(self.handed_over_at, "handed_over_at")


def offload_by_hospital(handovers: Iterable[Handover]) -> dict[str, IntervalSummary]:
    """Ambulance offload time (arrival at the hospital to handover) per hospital, p50 and p90, by hospital code.

    A handover recorded before the arrival (clocks of two phones) counts as zero: the crew was there."""
    times: dict[str, list[float]] = {}
    for h in handovers:
        times.setdefault(h.hospital, []).append(max(0.0, (h.handed_over_at - h.arrived_at).total_seconds()))
    return {code: summarize(values) for code, values in sorted(times.items())}
