"""What a hospital reports it can take now: free beds by class and which of its services are running.

SIRANAP-shaped: each figure is set by the hospital (or corrected by the Dinkes) with its time and who set
it. A figure older than the configured age is *stale*: shown, but not trusted as current. A figure never
reported is *unknown*, which is not the same as 0. Updates carry absolute values, never differences, so a
retried update leaves the same figures (and confirms them: their time moves on).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from dispatch._checks import check_aware, check_int, check_text
from dispatch.errors import InvalidInput
from dispatch.staleness import is_stale

__all__ = [
    "BED_CLASSES",
    "DEFAULT_STALE_AFTER",
    "MAX_BEDS",
    "Availability",
    "Figure",
    "Freshness",
    "Readiness",
    "freshness",
    "parse_beds",
    "parse_service_states",
    "readiness",
]

T = TypeVar("T")

# Bed classes as SIRANAP counts them, in the order the pages show them.
BED_CLASSES: tuple[str, ...] = ("igd", "icu", "nicu", "picu", "isolation", "ward")
MAX_BEDS = 9999
# Shifts change every 8 hours; a desk that updated at the start of its shift is still believed at its end,
# while a figure not confirmed by two shifts running (6 h is most of one) is a guess.
DEFAULT_STALE_AFTER = timedelta(hours=6)


class Freshness(enum.StrEnum):
    FRESH = "fresh"
    STALE = "stale"  # reported, but longer ago than the configured age
    UNKNOWN = "unknown"  # never reported


class Readiness(enum.StrEnum):
    """Whether the figures say a hospital can take this patient now (its IGD, and the service the call needs)."""

    READY = "ready"  # fresh figures: a free IGD bed and the needed service running
    UNCONFIRMED = "unconfirmed"  # a figure it needs is unknown or stale
    NOT_READY = "not_ready"  # a fresh figure says no IGD bed, or the needed service is down


@dataclass(frozen=True, slots=True)
class Figure:
    """One reported figure: a free-bed count, or whether a service runs now; when and by whom."""

    value: int | bool
    at: datetime
    by: str

    def __post_init__(self) -> None:
        if not isinstance(self.value, bool):
            check_int(self.value, "value", minimum=0)
        check_aware(self.at, "at")
        check_text(self.by, "by", max_len=200, allow_empty=False)


@dataclass(frozen=True, slots=True)
class Availability:
    """A hospital's reported figures; a class or service absent from the mapping was never reported."""

    beds: Mapping[str, Figure] = field(default_factory=dict, hash=False)
    services: Mapping[str, Figure] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        for name in self.beds:
            if name not in BED_CLASSES:
                raise InvalidInput(f"beds.{name}", f"unknown bed class; known: {', '.join(BED_CLASSES)}")
            if isinstance(self.beds[name].value, bool):
                raise InvalidInput(f"beds.{name}", "must be a count")
        for name, figure in self.services.items():
            if not isinstance(figure.value, bool):
                raise InvalidInput(f"services.{name}", "must be true or false")

    @property
    def reported(self) -> bool:
        return bool(self.beds or self.services)


def freshness(figure: Figure | None, now: datetime, stale_after: timedelta) -> Freshness:
    if figure is None:
        return Freshness.UNKNOWN
    return Freshness.STALE if is_stale(figure.at, now, stale_after) else Freshness.FRESH


def readiness(availability: Availability, service: str | None, now: datetime, stale_after: timedelta) -> Readiness:
    """What the figures say about taking a patient who needs ``service`` (None: only an IGD bed) now."""
    needed = [availability.beds.get("igd")]
    if service is not None:
        needed.append(availability.services.get(service))
    states = [freshness(f, now, stale_after) for f in needed]
    if any(f is not None and s is Freshness.FRESH and not f.value for f, s in zip(needed, states, strict=True)):
        return Readiness.NOT_READY
    if all(s is Freshness.FRESH for s in states):
        return Readiness.READY
    return Readiness.UNCONFIRMED


def _parse_figures(
    values: object, field: str, what: str, known: Iterable[str], unknown: str, check: Callable[[object, str], T]
) -> dict[str, T]:
    """An object of name to value: each name among ``known`` (else ``unknown``), each value through ``check``."""
    if not isinstance(values, Mapping):
        raise InvalidInput(field, f"must be an object of {what}")
    names = frozenset(known)
    parsed: dict[str, T] = {}
    for name, value in values.items():
        where = f"{field}.{name}"
        if name not in names:
            raise InvalidInput(where, f"{unknown}: {', '.join(sorted(names)) or 'none'}")
        parsed[name] = check(value, where)
    return parsed


def _bed_count(value: object, where: str) -> int:
    count = check_int(value, where, minimum=0)
    if count > MAX_BEDS:
        raise InvalidInput(where, f"must be at most {MAX_BEDS}")
    return count


def _running(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(where, f"must be true or false, got {type(value).__name__}")
    return value


def parse_beds(values: object, field: str = "beds") -> dict[str, int]:
    """``{"igd": 3, ...}``: known classes, integer counts 0..9999."""
    return _parse_figures(values, field, "bed class to free beds", BED_CLASSES, "unknown bed class; known", _bed_count)


def parse_service_states(values: object, offered: frozenset[str], field: str = "services") -> dict[str, bool]:
    """``{"cath_lab": false, ...}``: services the hospital has (its region data), each true or false."""
    return _parse_figures(values, field, "service to true (available now) or false", offered,
                          "not a service of this hospital; it has", _running)
