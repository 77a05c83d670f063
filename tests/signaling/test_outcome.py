from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from signaling.errors import InvalidValue
from signaling.outcome import Decision, Outcome, SoapNote

SOAP = {
    "subjective": "Sesak napas 3 hari",
    "objective": "RR 28, SpO2 91%, ronki basah kanan",
    "assessment": "Pneumonia komunitas",
    "plan": "Antibiotik, O2, evaluasi 48 jam",
}


def test_decision_values() -> None:
    assert [d.value for d in Decision] == ["advice", "refer", "follow_up"]


def test_parse_each_decision() -> None:
    advice = Outcome.from_dict({"soap": SOAP, "decision": "advice"})
    assert advice.decision is Decision.ADVICE
    assert advice.soap == SoapNote(**SOAP)
    refer = Outcome.from_dict({"soap": SOAP, "decision": "refer", "refer_to": "RSU Serpong Utara"})
    assert refer.refer_to == "RSU Serpong Utara"
    on_date = Outcome.from_dict(
        {"soap": SOAP, "decision": "follow_up", "follow_up_on": "2025-03-10"}
    )
    assert on_date.follow_up_on == date(2025, 3, 10)
    after = Outcome.from_dict({"soap": SOAP, "decision": "follow_up", "follow_up_in_hours": 48})
    assert after.follow_up_in == timedelta(hours=48)
    for value in (advice, refer, on_date, after):
        assert Outcome.from_dict(value.to_dict()) == value
    assert after.to_dict()["follow_up_in_hours"] == 48


def test_subjective_and_objective_may_be_empty() -> None:
    soap = {**SOAP, "subjective": "", "objective": ""}
    assert Outcome.from_dict({"soap": soap, "decision": "advice"}).soap.objective == ""
    assert Outcome.from_dict({"soap": {"assessment": "a", "plan": "p"}, "decision": "advice"})


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"decision": "refer"}, "outcome.referral"),
        ({"decision": "refer", "refer_to": "  "}, "outcome.refer_to"),
        ({"decision": "advice", "refer_to": "RSUD"}, "outcome.refer_to"),
        ({"decision": "follow_up"}, "outcome.follow_up_on"),
        (
            {"decision": "follow_up", "follow_up_on": "2025-03-10", "follow_up_in_hours": 24},
            "outcome.follow_up_in_hours",
        ),
        ({"decision": "advice", "follow_up_on": "2025-03-10"}, "outcome.follow_up_on"),
        ({"decision": "refer", "refer_to": "R", "follow_up_in_hours": 2}, "outcome.follow_up_in_hours"),
        ({"decision": "follow_up", "follow_up_on": "10/03/2025"}, "outcome.follow_up_on"),
        ({"decision": "follow_up", "follow_up_in_hours": 0}, "outcome.follow_up_in_hours"),
        ({"decision": "follow_up", "follow_up_in_hours": "24"}, "outcome.follow_up_in_hours"),
        ({"decision": "discharge"}, "outcome.decision"),
        ({}, "outcome.decision"),
        ({"decision": "advice", "extra": 1}, "outcome.extra"),
    ],
)
def test_decision_rules_name_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidValue) as info:
        Outcome.from_dict({"soap": SOAP, **body})
    assert info.value.field == field


@pytest.mark.parametrize(
    ("soap", "field"),
    [
        ({**SOAP, "assessment": ""}, "outcome.soap.assessment"),
        ({**SOAP, "plan": None}, "outcome.soap.plan"),
        ({**SOAP, "plan": "x" * 10_001}, "outcome.soap.plan"),
        ({**SOAP, "notes": "x"}, "outcome.soap.notes"),
        ("just text", "outcome.soap"),
    ],
)
def test_soap_errors_name_the_field(soap: object, field: str) -> None:
    with pytest.raises(InvalidValue) as info:
        Outcome.from_dict({"soap": soap, "decision": "advice"})
    assert info.value.field == field


def test_interval_must_be_whole_hours_when_built_directly() -> None:
    with pytest.raises(InvalidValue) as info:
        Outcome(SoapNote(**SOAP), Decision.FOLLOW_UP, follow_up_in=timedelta(minutes=90))
    assert info.value.field == "outcome.follow_up_in_hours"
