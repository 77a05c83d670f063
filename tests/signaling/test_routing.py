from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from signaling.consult import Consult
from signaling.errors import InvalidValue
from signaling.ids import UserId
from signaling.routing import (
    Escalation,
    OnCallRoster,
    escalation,
    new_request_notice,
    overdue,
    queue_key,
    should_expire,
    sweep,
    waiting_queue,
)
from signaling.specialty import Specialty
from signaling.urgency import DeadlinePolicy, Urgency, UrgencyTimes

T0 = datetime(2025, 3, 3, 2, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
SP_A, SP_B, SP_C = UserId("sp-a"), UserId("sp-b"), UserId("sp-c")
ADMIN = UserId("admin-dinkes")

MakeConsult = Callable[..., Consult]


# --- urgency and deadlines ------------------------------------------------------------


def test_urgency_values_and_order() -> None:
    assert [u.value for u in Urgency] == ["emergency", "urgent", "routine"]
    assert sorted(Urgency, key=lambda u: u.rank) == [
        Urgency.EMERGENCY, Urgency.URGENT, Urgency.ROUTINE,
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("urgency", "respond", "expire"),
    [
        (Urgency.EMERGENCY, timedelta(minutes=10), timedelta(hours=1)),
        (Urgency.URGENT, timedelta(minutes=60), timedelta(hours=6)),
        (Urgency.ROUTINE, timedelta(hours=24), timedelta(hours=72)),
    ],
)
def test_default_deadlines(urgency: Urgency, respond: timedelta, expire: timedelta) -> None:
    assert DeadlinePolicy().deadlines(urgency, T0) == (T0 + respond, T0 + expire)


def test_deadlines_are_configurable_and_checked() -> None:
    policy = DeadlinePolicy(emergency=UrgencyTimes(timedelta(minutes=5), timedelta(minutes=30)))
    assert policy.deadlines(Urgency.EMERGENCY, T0).respond_by == T0 + 5 * MIN
    assert policy.deadlines(Urgency.URGENT, T0).respond_by == T0 + 60 * MIN
    with pytest.raises(InvalidValue) as info:
        UrgencyTimes(timedelta(hours=2), timedelta(hours=1))
    assert info.value.field == "expire_after"
    with pytest.raises(InvalidValue):
        UrgencyTimes(timedelta(0), timedelta(hours=1))
    with pytest.raises(InvalidValue):
        DeadlinePolicy().deadlines(Urgency.URGENT, datetime(2025, 3, 3, 9, 0))


def test_specialty_codes_and_labels() -> None:
    codes = {s.value for s in Specialty}
    assert {"penyakit_dalam", "anak", "obgyn", "jantung", "radiologi", "saraf", "bedah", "paru"} <= codes
    assert Specialty.PENYAKIT_DALAM.label() == "Penyakit Dalam"
    assert Specialty.PENYAKIT_DALAM.label("en") == "Internal medicine"
    assert Specialty.ANAK.label("en") == "Paediatrics"
    assert all(s.label("id") and s.label("en") for s in Specialty)


# --- roster ---------------------------------------------------------------------------


def test_roster_on_and_off_call() -> None:
    roster = OnCallRoster()
    assert roster.set_on_call(SP_B, Specialty.JANTUNG, True) is True
    assert roster.set_on_call(SP_A, Specialty.JANTUNG, True) is True
    assert roster.set_on_call(SP_A, Specialty.JANTUNG, True) is False  # no change
    roster.set_on_call(SP_A, Specialty.PENYAKIT_DALAM, True)
    assert roster.on_call_for(Specialty.JANTUNG) == (SP_A, SP_B)  # sorted
    assert roster.on_call_for(Specialty.PARU) == ()
    assert roster.specialties_of(SP_A) == {Specialty.JANTUNG, Specialty.PENYAKIT_DALAM}
    assert roster.set_on_call(SP_B, Specialty.JANTUNG, False) is True
    assert roster.on_call_for(Specialty.JANTUNG) == (SP_A,)
    assert roster.off_duty(SP_A) == {Specialty.JANTUNG, Specialty.PENYAKIT_DALAM}
    assert not roster.is_on_call(SP_A, Specialty.PENYAKIT_DALAM)
    assert roster.on_call_for(Specialty.JANTUNG) == ()


def test_roster_from_pairs_and_bad_input() -> None:
    roster = OnCallRoster.from_pairs([(SP_C, Specialty.ANAK), (SP_A, Specialty.ANAK)])
    assert roster.on_call_for(Specialty.ANAK) == (SP_A, SP_C)
    with pytest.raises(InvalidValue) as info:
        roster.set_on_call(SP_A, "cardiology", True)  # type: ignore[arg-type]
    assert info.value.field == "specialty"


# --- queue ----------------------------------------------------------------------------


def test_queue_urgency_first_then_waiting_time_then_id(make_consult: MakeConsult) -> None:
    routine_old = make_consult("r-old", Urgency.ROUTINE, at=T0 - timedelta(hours=20))
    urgent_new = make_consult("u-new", Urgency.URGENT, at=T0)
    urgent_old = make_consult("u-old", Urgency.URGENT, at=T0 - 30 * MIN)
    emergency = make_consult("e-1", Urgency.EMERGENCY, at=T0 + MIN)
    tie_b = make_consult("t-b", Urgency.URGENT, at=T0 - 10 * MIN)
    tie_a = make_consult("t-a", Urgency.URGENT, at=T0 - 10 * MIN)
    accepted = make_consult("acc", Urgency.EMERGENCY).accept(SP_A, T0)
    other = make_consult("paru", Urgency.EMERGENCY, specialty=Specialty.PARU)
    everything = [routine_old, urgent_new, urgent_old, emergency, tie_b, tie_a, accepted, other]
    expected_jantung = ["e-1", "u-old", "t-a", "t-b", "u-new", "r-old"]
    for seed in range(5):
        random.Random(seed).shuffle(everything)
        ordered = waiting_queue(everything, Specialty.JANTUNG)
        assert [c.id for c in ordered] == expected_jantung
    assert [c.id for c in waiting_queue(everything)] == ["paru", *expected_jantung]
    assert queue_key(tie_a) < queue_key(tie_b)


# --- overdue, expiry, escalation ------------------------------------------------------


def test_overdue_and_expiry_clocks(make_consult: MakeConsult) -> None:
    consult = make_consult(urgency=Urgency.EMERGENCY)  # respond +10 min, expire +60 min
    assert not overdue(consult, T0 + 9 * MIN)
    assert overdue(consult, T0 + 10 * MIN)
    assert not should_expire(consult, T0 + 59 * MIN)
    assert should_expire(consult, T0 + 60 * MIN)
    accepted = consult.accept(SP_A, T0 + 11 * MIN)
    assert not overdue(accepted, T0 + 30 * MIN)
    assert not should_expire(accepted, T0 + 2 * 60 * MIN)


def test_escalation_targets_on_call_specialists_and_admins(make_consult: MakeConsult) -> None:
    roster = OnCallRoster.from_pairs(
        [(SP_B, Specialty.JANTUNG), (SP_A, Specialty.JANTUNG), (SP_C, Specialty.PARU)]
    )
    consult = make_consult(urgency=Urgency.EMERGENCY)
    assert escalation(consult, T0 + 9 * MIN, roster, [ADMIN]) is None
    decision = escalation(consult, T0 + 12 * MIN, roster, [ADMIN, SP_A])
    assert decision == Escalation(
        consult_id=consult.id,
        specialty=Specialty.JANTUNG,
        urgency=Urgency.EMERGENCY,
        respond_by=T0 + 10 * MIN,
        overdue_by=2 * MIN,
        specialists=(SP_A, SP_B),
        admins=(ADMIN, SP_A),
    )
    assert decision.recipients == (ADMIN, SP_A, SP_B)  # each once
    escalated = consult.mark_escalated(T0 + 12 * MIN)
    assert escalation(escalated, T0 + 13 * MIN, roster, [ADMIN]) is None
    assert escalation(consult, T0 + 60 * MIN, roster, [ADMIN]) is None  # expires instead


def test_escalation_never_notifies_the_requester(make_consult: MakeConsult) -> None:
    consult = make_consult()
    roster = OnCallRoster.from_pairs([(consult.requester, Specialty.JANTUNG)])
    decision = escalation(consult, T0 + 61 * MIN, roster, [consult.requester, ADMIN])
    assert decision is not None
    assert decision.recipients == (ADMIN,)


def test_new_request_goes_to_admins_when_nobody_is_on_call(make_consult: MakeConsult) -> None:
    consult = make_consult()
    staffed = new_request_notice(consult, OnCallRoster.from_pairs([(SP_A, Specialty.JANTUNG)]), [ADMIN])
    assert (staffed.specialists, staffed.admins, staffed.unstaffed) == ((SP_A,), (), False)
    empty = new_request_notice(consult, OnCallRoster(), [ADMIN])
    assert (empty.specialists, empty.admins, empty.unstaffed) == ((), (ADMIN,), True)
    assert empty.recipients == (ADMIN,)


def test_sweep_expires_and_escalates_in_queue_order(make_consult: MakeConsult) -> None:
    roster = OnCallRoster.from_pairs([(SP_A, Specialty.JANTUNG)])
    now = T0 + 2 * 60 * MIN
    stale = make_consult("stale", Urgency.EMERGENCY)  # expired at +60 min
    late_urgent = make_consult("late", Urgency.URGENT)  # overdue at +60 min
    late_done = make_consult("done", Urgency.URGENT).mark_escalated(T0 + 61 * MIN)
    fresh = make_consult("fresh", Urgency.ROUTINE)
    accepted = make_consult("acc", Urgency.EMERGENCY).accept(SP_A, T0)
    result = sweep([fresh, accepted, late_done, late_urgent, stale], now, roster, [ADMIN])
    assert result.expire == ("stale",)
    assert [e.consult_id for e in result.escalate] == ["late"]
    assert result.escalate[0].overdue_by == 60 * MIN
