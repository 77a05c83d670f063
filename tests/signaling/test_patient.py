from __future__ import annotations

from typing import Any

import pytest

from signaling.errors import InvalidValue
from signaling.patient import PatientSummary, Sex, VitalSigns

BODY: dict[str, Any] = {
    "age": 3,
    "sex": "male",
    "chief_complaint": "Demam 4 hari, ruam",
    "question": "Suspek DBD? Perlu rawat inap?",
    "vitals": {"heart_rate": 140, "temperature_c": 39.2, "spo2": 97, "respiratory_rate": 32},
}


def test_from_dict_builds_typed_values() -> None:
    summary = PatientSummary.from_dict(BODY)
    assert summary.age == 3
    assert summary.sex is Sex.MALE
    assert summary.vitals == VitalSigns(
        heart_rate=140, temperature_c=39.2, spo2=97, respiratory_rate=32
    )
    assert summary.to_dict() == BODY
    assert PatientSummary.from_dict(summary.to_dict()) == summary


def test_vitals_are_optional() -> None:
    body = {k: v for k, v in BODY.items() if k != "vitals"}
    assert PatientSummary.from_dict(body).vitals is None
    assert VitalSigns().to_dict() == {}


@pytest.mark.parametrize(
    ("vitals", "field"),
    [
        ({"spo2": 101}, "patient.vitals.spo2"),
        ({"spo2": 9}, "patient.vitals.spo2"),
        ({"spo2": 97.5}, "patient.vitals.spo2"),
        ({"heart_rate": 0}, "patient.vitals.heart_rate"),
        ({"heart_rate": "90"}, "patient.vitals.heart_rate"),
        ({"respiratory_rate": True}, "patient.vitals.respiratory_rate"),
        ({"temperature_c": 46.0}, "patient.vitals.temperature_c"),
        ({"temperature_c": float("nan")}, "patient.vitals.temperature_c"),
        ({"systolic_bp": 301}, "patient.vitals.systolic_bp"),
        ({"systolic_bp": 120, "diastolic_bp": 130}, "patient.vitals.diastolic_bp"),
        ({"pulse": 80}, "patient.vitals.pulse"),
    ],
)
def test_vital_sign_errors_name_the_field(vitals: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidValue) as info:
        PatientSummary.from_dict({**BODY, "vitals": vitals})
    assert info.value.field == field


def test_direct_construction_names_the_same_field() -> None:
    with pytest.raises(InvalidValue) as info:
        VitalSigns(spo2=120)
    assert info.value.field == "patient.vitals.spo2"
    assert str(info.value) == "patient.vitals.spo2: must be in 50..100"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"age": 131}, "patient.age"),
        ({"age": -1}, "patient.age"),
        ({"age": "54"}, "patient.age"),
        ({"age": False}, "patient.age"),
        ({"sex": "m"}, "patient.sex"),
        ({"chief_complaint": "   "}, "patient.chief_complaint"),
        ({"chief_complaint": "x" * 501}, "patient.chief_complaint"),
        ({"chief_complaint": "nyeri\x00"}, "patient.chief_complaint"),
        ({"question": 7}, "patient.question"),
        ({"vitals": [1, 2]}, "patient.vitals"),
        ({"name": "Siti"}, "patient.name"),
    ],
)
def test_summary_errors_name_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidValue) as info:
        PatientSummary.from_dict({**BODY, **change})
    assert info.value.field == field


def test_missing_required_field() -> None:
    body = {k: v for k, v in BODY.items() if k != "question"}
    with pytest.raises(InvalidValue) as info:
        PatientSummary.from_dict(body)
    assert (info.value.field, info.value.reason) == ("patient.question", "is required")


def test_limits_are_inclusive() -> None:
    summary = PatientSummary(
        age=130,
        sex=Sex.FEMALE,
        chief_complaint="x" * 500,
        question="baris 1\nbaris 2",
        vitals=VitalSigns(spo2=50, temperature_c=25, systolic_bp=300, diastolic_bp=200),
    )
    assert summary.age == 130
