"""The crew's vital signs for the receiving hospital, and the patient's age and sex.

The ranges are plausibility limits: they catch a slip of the thumb on a phone (``980`` for a pulse
of ``98``, a saturation of ``9``) and never a critically ill patient's real value, so they reach
down to what an arrest or a peri-arrest patient shows (no pulse, no breathing, a GCS of 3, a pressure
a monitor can barely read) and up past what a hypertensive crisis or a child's tachycardia reaches.
Every sign is optional (a crew measures what it can), at least one is given, and each set carries
the time it was measured.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from dispatch._checks import check_aware
from dispatch.errors import InvalidInput

__all__ = ["RANGES", "Patient", "Sex", "Vitals", "parse_patient", "parse_vitals"]

#: (lowest, highest) plausible value per sign, inclusive; all whole numbers.
RANGES: Mapping[str, tuple[int, int]] = {
    "systolic": (20, 300),  # mmHg
    "diastolic": (10, 200),  # mmHg
    "pulse": (0, 300),  # beats/min; 0: no pulse
    "spo2": (30, 100),  # %
    "gcs": (3, 15),  # Glasgow coma scale
    "resp_rate": (0, 80),  # breaths/min; 0: apnoea
}
AGE_MAX = 120
# A phone's clock may run a little ahead; vitals kept on a phone without signal may arrive hours late.
MAX_CLOCK_SKEW = timedelta(minutes=5)
MAX_AGE = timedelta(hours=6)


class Sex(StrEnum):
    MALE = "male"
    FEMALE = "female"


@dataclass(frozen=True, slots=True)
class Vitals:
    """One set of signs measured at ``measured_at``; None where not measured."""

    measured_at: datetime
    systolic: int | None = None
    diastolic: int | None = None
    pulse: int | None = None
    spo2: int | None = None
    gcs: int | None = None
    resp_rate: int | None = None

    def __post_init__(self) -> None:
        check_aware(self.measured_at, "measured_at")
        for name, (low, high) in RANGES.items():
            _whole(getattr(self, name), name, low, high)
        if all(getattr(self, name) is None for name in RANGES):
            raise InvalidInput("vitals", "give at least one sign")
        if (self.systolic is None) != (self.diastolic is None):
            raise InvalidInput("diastolic" if self.diastolic is None else "systolic", "a blood pressure needs both figures")
        if self.systolic is not None and self.diastolic is not None and self.diastolic >= self.systolic:
            raise InvalidInput("diastolic", "must be lower than the systolic pressure")

    def signs(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in RANGES if getattr(self, name) is not None}


@dataclass(frozen=True, slots=True)
class Patient:
    age: int | None = None  # whole years
    sex: Sex | None = None

    def __post_init__(self) -> None:
        _whole(self.age, "age", 0, AGE_MAX)
        if self.sex is not None and not isinstance(self.sex, Sex):
            raise InvalidInput("sex", "must be a Sex")


def _whole(value: object, field: str, low: int, high: int) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(field, "must be a whole number")
    if not low <= value <= high:
        raise InvalidInput(field, f"must be from {low} to {high}")


def parse_vitals(data: Mapping[str, object], now: datetime) -> Vitals:
    """The signs in ``data`` (and ``measured_at``, default ``now``), checked against the ranges and the clock."""
    unknown = sorted(set(data) - set(RANGES) - {"measured_at"})
    if unknown:
        raise InvalidInput(unknown[0], "is not a vital sign")
    measured = data.get("measured_at")
    if measured is None:
        at = now
    elif isinstance(measured, datetime):
        at = measured
    elif isinstance(measured, str):
        try:
            at = datetime.fromisoformat(measured)
        except ValueError:
            raise InvalidInput("measured_at", "must be an ISO 8601 time with a zone") from None
    else:
        raise InvalidInput("measured_at", "must be an ISO 8601 time with a zone")
    if at.tzinfo is None:
        raise InvalidInput("measured_at", "must carry a time zone")
    if not now - MAX_AGE <= at <= now + MAX_CLOCK_SKEW:
        raise InvalidInput("measured_at", "is too far from the server's clock")
    signs = {name: data.get(name) for name in RANGES}
    for name, value in signs.items():
        _whole(value, name, *RANGES[name])
    return Vitals(at, **signs)  # type: ignore[arg-type]


def parse_patient(data: Mapping[str, object]) -> Patient:
    unknown = sorted(set(data) - {"age", "sex"})
    if unknown:
        raise InvalidInput(unknown[0], "is not a patient field")
    sex = data.get("sex")
    if sex is not None and sex not in tuple(Sex):
        raise InvalidInput("sex", "must be male or female")
    age = data.get("age")
    _whole(age, "age", 0, AGE_MAX)
    return Patient(age, None if sex is None else Sex(str(sex)))  # type: ignore[arg-type]
