"""signaling.referral and signaling.icd10: a referral request's form, the ICD-10 code's, the hospital's one answer,
and an outcome that refers (a request now; a hospital's name as text only in consults completed before)."""

from __future__ import annotations

from typing import Any

import pytest

from signaling.errors import IllegalTransition, InvalidValue
from signaling.icd10 import COMMON, parse_code
from signaling.outcome import Decision, Outcome
from signaling.referral import Answer, ReferralRequest, ReferralState, answer
from signaling.urgency import Urgency

SOAP = {"subjective": "s", "objective": "o", "assessment": "STEMI", "plan": "rujuk"}
REFERRAL = {"hospital": "rs-eka-hospital-bsd", "icd10": "I21.9", "reason": "STEMI anterior, perlu PCI", "urgency": "emergency",
            "service": "cath_lab", "transport": True}


@pytest.mark.parametrize(("given", "code"), [("I21.9", "I21.9"), ("i21.9", "I21.9"), (" O14.1 ", "O14.1"), ("A91", "A91"),
                                             ("S72.00", "S72.00"), ("U07.1", "U07.1")])
def test_icd10_codes_of_the_right_form_are_taken_in_canonical_form(given: str, code: str) -> None:
    assert parse_code(given, "f") == code


@pytest.mark.parametrize("bad", ["I21.", "I2.19", "121.9", "I21.999", "STEMI", "", "I21-9", "II21", 219, None])
def test_icd10_codes_of_another_form_name_the_field(bad: object) -> None:
    with pytest.raises(InvalidValue) as info:
        parse_code(bad, "outcome.referral.icd10")
    assert info.value.field == "outcome.referral.icd10"


def test_the_common_diagnoses_are_valid_codes_with_both_labels() -> None:
    for code, (label_id, label_en) in COMMON.items():
        assert parse_code(code, "code") == code and label_id and label_en


def test_a_referral_request_round_trips() -> None:
    request = ReferralRequest.from_dict({**REFERRAL, "icd10": "i21.9"})
    assert request == ReferralRequest("rs-eka-hospital-bsd", "I21.9", "STEMI anterior, perlu PCI", Urgency.EMERGENCY, "cath_lab", True)
    assert ReferralRequest.from_dict(request.to_dict()) == request
    assert ReferralRequest.from_dict({**REFERRAL, "service": None}).service is None


@pytest.mark.parametrize(("change", "field"), [
    ({"icd10": "STEMI"}, "outcome.referral.icd10"),
    ({"hospital": "RS Eka"}, "outcome.referral.hospital"),
    ({"hospital": None}, "outcome.referral.hospital"),
    ({"reason": " "}, "outcome.referral.reason"),
    ({"reason": "x" * 1001}, "outcome.referral.reason"),
    ({"urgency": "soon"}, "outcome.referral.urgency"),
    ({"service": "Cath Lab"}, "outcome.referral.service"),
    ({"transport": "yes"}, "outcome.referral.transport"),
    ({"extra": 1}, "outcome.referral.extra"),
])
def test_a_bad_referral_names_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidValue) as info:
        ReferralRequest.from_dict({**REFERRAL, **change})
    assert info.value.field == field


@pytest.mark.parametrize("missing", ["hospital", "icd10", "reason", "urgency", "transport"])
def test_a_referral_needs_each_of_its_fields(missing: str) -> None:
    with pytest.raises(InvalidValue) as info:
        ReferralRequest.from_dict({k: v for k, v in REFERRAL.items() if k != missing})
    assert info.value.field == f"outcome.referral.{missing}"


def test_the_hospital_answers_once_and_a_repeat_changes_nothing() -> None:
    assert answer(ReferralState.REQUESTED, Answer.ACCEPT) == (ReferralState.ACCEPTED, True)
    assert answer(ReferralState.REQUESTED, Answer.DECLINE) == (ReferralState.DECLINED, True)
    assert answer(ReferralState.ACCEPTED, Answer.ACCEPT) == (ReferralState.ACCEPTED, False)
    assert answer(ReferralState.DECLINED, Answer.DECLINE) == (ReferralState.DECLINED, False)
    for state, given in ((ReferralState.ACCEPTED, Answer.DECLINE), (ReferralState.DECLINED, Answer.ACCEPT)):
        with pytest.raises(IllegalTransition):
            answer(state, given)


def test_a_submitted_referral_is_a_request_and_an_older_one_is_still_read() -> None:
    submitted = Outcome.submitted({"soap": SOAP, "decision": "refer", "referral": REFERRAL})
    assert submitted.decision is Decision.REFER and submitted.referral is not None and submitted.refer_to is None
    assert Outcome.from_dict(submitted.to_dict()) == submitted
    # A consult completed before referrals were requests: a hospital's name as text, read as it was written.
    older = Outcome.from_dict({"soap": SOAP, "decision": "refer", "refer_to": "RSUD Kota Tangerang Selatan"})
    assert older.refer_to == "RSUD Kota Tangerang Selatan" and older.referral is None
    assert older.to_dict() == {"soap": SOAP, "decision": "refer", "refer_to": "RSUD Kota Tangerang Selatan"}
    for body, field in (
        ({"decision": "refer", "refer_to": "RSUD Kota Tangerang Selatan"}, "outcome.refer_to"),
        ({"decision": "refer", "referral": REFERRAL, "refer_to": "RSUD"}, "outcome.refer_to"),
        ({"decision": "refer"}, "outcome.referral"),
        ({"decision": "advice", "referral": REFERRAL}, "outcome.referral"),
        ({"decision": "refer", "referral": {**REFERRAL, "icd10": "I2"}}, "outcome.referral.icd10"),
    ):
        with pytest.raises(InvalidValue) as info:
            Outcome.submitted({"soap": SOAP, **body})
        assert info.value.field == field, body
