"""The pre-arrival notice's lifecycle and the ETA the hospital is shown."""

from __future__ import annotations

import pytest

from dispatch.errors import IllegalTransition, InvalidInput
from dispatch.prearrival import OPEN, NoticeStatus, eta_to_hospital_s, move, parse_reason

S = NoticeStatus


@pytest.mark.parametrize("current,target", [
    (S.SENT, S.ACKNOWLEDGED), (S.SENT, S.DECLINED), (S.SENT, S.WITHDRAWN), (S.SENT, S.HANDED_OVER),
    (S.ACKNOWLEDGED, S.DECLINED), (S.ACKNOWLEDGED, S.WITHDRAWN), (S.ACKNOWLEDGED, S.HANDED_OVER),
])
def test_legal_moves(current: NoticeStatus, target: NoticeStatus) -> None:
    assert move(current, target) is target


@pytest.mark.parametrize("current", [S.DECLINED, S.WITHDRAWN, S.HANDED_OVER])
def test_closed_notices_are_final(current: NoticeStatus) -> None:
    assert current not in OPEN
    for target in S:
        with pytest.raises(IllegalTransition):
            move(current, target)


def test_nothing_goes_back_to_sent() -> None:
    with pytest.raises(IllegalTransition):
        move(S.ACKNOWLEDGED, S.SENT)


def test_a_decline_says_why() -> None:
    assert parse_reason("  IGD penuh ") == "IGD penuh"
    for bad in ("", "   ", None, "a\nb", "x" * 501):
        with pytest.raises(InvalidInput) as caught:
            parse_reason(bad)
        assert caught.value.field == "reason"


def test_eta_only_once_the_patient_is_on_board() -> None:
    assert eta_to_hospital_s("transporting", 420.0) == 420.0
    assert eta_to_hospital_s("at_hospital", 420.0) == 0.0
    assert eta_to_hospital_s("en_route", 420.0) is None
    assert eta_to_hospital_s("on_scene", 420.0) is None
