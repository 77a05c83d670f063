"""What the puskesmas doctor tells the specialist about the patient.

Deliberately no name, NIK (national id) or phone number: a consult needs the
clinical picture, and these values may end up in logs and notifications.

Every validation error names the field by its path in the consult request body,
``patient.<field>`` / ``patient.vitals.<field>``, whether the value was built
directly or parsed with `PatientSummary.from_dict`.

Vital-sign ranges are plausibility limits that catch typos (a ``9`` for ``98``
SpO2) without refusing a critically ill patient's real values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from . import _check
from .errors import InvalidValue

__all__ = ["PatientSummary", "Sex", "VitalSigns"]

_PATIENT = "patient"
_VITALS = "patient.vitals"

#: (low, high) per vital sign, inclusive.
VITAL_RANGES: Mapping[str, tuple[float, float]] = {
    "systolic_bp": (40, 300),  # mmHg
    "diastolic_bp": (20, 200),  # mmHg
    "heart_rate": (20, 300),  # beats/min
    "respiratory_rate": (2, 80),  # breaths/min
    "temperature_c": (25.0, 45.0),  # °C
    "spo2": (50, 100),  # %
}
AGE_MAX = 130
CHIEF_COMPLAINT_MAX = 500
QUESTION_MAX = 2000


class Sex(StrEnum):
    MALE = "male"
    FEMALE = "female"


@dataclass(frozen=True, slots=True)
class VitalSigns:
    """Optional vital signs; each one that is given is range-checked."""

    systolic_bp: int | None = None
    diastolic_bp: int | None = None
    heart_rate: int | None = None
    respiratory_rate: int | None = None
    temperature_c: float | None = None
    spo2: int | None = None

    def __post_init__(self) -> None:
        for name in ("systolic_bp", "diastolic_bp", "heart_rate", "respiratory_rate", "spo2"):
            value = getattr(self, name)
            if value is not None:
                lo, hi = VITAL_RANGES[name]
                _check.integer(value, f"{_VITALS}.{name}", int(lo), int(hi))
        if self.temperature_c is not None:
            lo, hi = VITAL_RANGES["temperature_c"]
            _check.number(self.temperature_c, f"{_VITALS}.temperature_c", lo, hi)
        if (
            self.systolic_bp is not None
            and self.diastolic_bp is not None
            and self.diastolic_bp >= self.systolic_bp
        ):
            raise InvalidValue(f"{_VITALS}.diastolic_bp", "must be lower than systolic_bp")

    @classmethod
    def from_dict(cls, data: object) -> VitalSigns:
        fields = _check.fields(data, _VITALS, tuple(VITAL_RANGES))

        def whole(name: str) -> int | None:
            value = fields.get(name)
            if value is None:
                return None
            lo, hi = VITAL_RANGES[name]
            return _check.integer(value, f"{_VITALS}.{name}", int(lo), int(hi))

        temperature: float | None = None
        if fields.get("temperature_c") is not None:
            lo, hi = VITAL_RANGES["temperature_c"]
            temperature = _check.number(fields["temperature_c"], f"{_VITALS}.temperature_c", lo, hi)
        return cls(
            systolic_bp=whole("systolic_bp"),
            diastolic_bp=whole("diastolic_bp"),
            heart_rate=whole("heart_rate"),
            respiratory_rate=whole("respiratory_rate"),
            temperature_c=temperature,
            spo2=whole("spo2"),
        )

    def to_dict(self) -> dict[str, object]:
        return {key: getattr(self, key) for key in VITAL_RANGES if getattr(self, key) is not None}


@dataclass(frozen=True, slots=True)
class PatientSummary:
    age: int
    sex: Sex
    chief_complaint: str
    question: str
    vitals: VitalSigns | None = None

    def __post_init__(self) -> None:
        _check.integer(self.age, f"{_PATIENT}.age", 0, AGE_MAX)
        if not isinstance(self.sex, Sex):
            raise InvalidValue(f"{_PATIENT}.sex", "must be one of: male, female")
        complaint = f"{_PATIENT}.chief_complaint"
        _check.text(self.chief_complaint, complaint, max_len=CHIEF_COMPLAINT_MAX)
        _check.text(self.question, f"{_PATIENT}.question", max_len=QUESTION_MAX, multiline=True)
        if self.vitals is not None and not isinstance(self.vitals, VitalSigns):
            raise InvalidValue(_VITALS, "must be vital signs")

    @classmethod
    def from_dict(cls, data: object) -> PatientSummary:
        """Parse the ``patient`` object of a consult request body."""
        fields = _check.fields(data, _PATIENT, ("age", "sex", "chief_complaint", "question", "vitals"))
        for required in ("age", "sex", "chief_complaint", "question"):
            if required not in fields:
                raise InvalidValue(f"{_PATIENT}.{required}", "is required")
        vitals = fields.get("vitals")
        return cls(
            age=_check.integer(fields["age"], f"{_PATIENT}.age", 0, AGE_MAX),
            sex=_check.choice(Sex, fields["sex"], f"{_PATIENT}.sex"),
            chief_complaint=_check.text(
                fields["chief_complaint"],
                f"{_PATIENT}.chief_complaint",
                max_len=CHIEF_COMPLAINT_MAX,
            ),
            question=_check.text(
                fields["question"], f"{_PATIENT}.question", max_len=QUESTION_MAX, multiline=True
            ),
            vitals=None if vitals is None else VitalSigns.from_dict(vitals),
        )

    def to_dict(self) -> dict[str, object]:
        result: dict[str, object] = {
            "age": self.age,
            "sex": self.sex.value,
            "chief_complaint": self.chief_complaint,
            "question": self.question,
        }
        if self.vitals is not None:
            result["vitals"] = self.vitals.to_dict()
        return result
