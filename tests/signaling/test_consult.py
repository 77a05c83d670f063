from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from signaling.consult import (
    TRANSITIONS,
    Consult,
    ConsultEvent,
    ConsultState,
    ServiceType,
    allowed_events,
    transition,
)
from signaling.errors import IllegalTransition, InvalidValue, SignalingError
from signaling.ids import UserId
from signaling.outcome import Decision, Outcome, SoapNote
from signaling.urgency import Urgency

T0 = datetime(2025, 3, 3, 2, 0, tzinfo=UTC)
SPECIALIST = UserId("dr-budi-sppd")

MakeConsult = Callable[..., Consult]

# Written out by hand from the design, independent of signaling.consult.TRANSITIONS.
LEGAL = {
    ("requested", "accept"): "accepted",
    ("requested", "cancel"): "cancelled",
    ("requested", "expire"): "expired",
    ("accepted", "start_session"): "in_session",
    ("accepted", "complete"): "completed",
    ("accepted", "cancel"): "cancelled",
    ("in_session", "complete"): "completed",
}
ALL_PAIRS = list(itertools.product(ConsultState, ConsultEvent))
ILLEGAL = [(s, e) for s, e in ALL_PAIRS if (s.value, e.value) not in LEGAL]


def outcome() -> Outcome:
    soap = SoapNote("nyeri dada", "EKG: ST elevasi V1-V4", "STEMI anterior", "rujuk untuk PCI")
    return Outcome(soap, Decision.REFER, refer_to="RSUD Kota Tangerang Selatan")


@pytest.mark.parametrize(("state", "event"), [tuple(k) for k in LEGAL])
def test_every_legal_transition(state: str, event: str) -> None:
    assert transition(ConsultState(state), ConsultEvent(event)) is ConsultState(LEGAL[state, event])


@pytest.mark.parametrize(("state", "event"), ILLEGAL)
def test_every_other_transition_is_illegal(state: ConsultState, event: ConsultEvent) -> None:
    with pytest.raises(IllegalTransition) as info:
        transition(state, event)
    assert info.value.state == state.value
    assert info.value.event == event.value
    assert info.value.code == "illegal_transition"
    assert isinstance(info.value, SignalingError)


def test_table_has_exactly_the_designed_transitions() -> None:
    table = {(s.value, e.value): n.value for s, row in TRANSITIONS.items() for e, n in row.items()}
    assert table == LEGAL
    assert len(ILLEGAL) == len(ALL_PAIRS) - 7


def test_terminal_states() -> None:
    assert {s.value for s in ConsultState if s.terminal} == {"completed", "cancelled", "expired"}
    assert allowed_events(ConsultState.ACCEPTED) == {
        ConsultEvent.START_SESSION,
        ConsultEvent.COMPLETE,
        ConsultEvent.CANCEL,
    }


def test_enum_string_values() -> None:
    assert [s.value for s in ConsultState] == [
        "requested", "accepted", "in_session", "completed", "cancelled", "expired",
    ]  # fmt: skip
    assert [s.value for s in ServiceType] == [
        "teleconsultation", "tele_radiology", "tele_ekg", "tele_usg",
    ]  # fmt: skip
    assert ServiceType.TELE_EKG.label() == "Teleelektrokardiografi"
    assert ServiceType.TELE_USG.label("en") == "Tele-ultrasonography"


def test_request_fixes_deadlines_from_urgency(make_consult: MakeConsult) -> None:
    consult = make_consult(urgency=Urgency.EMERGENCY)
    assert consult.state is ConsultState.REQUESTED
    assert consult.requested_at == T0
    assert consult.respond_by == T0 + timedelta(minutes=10)
    assert consult.expires_at == T0 + timedelta(hours=1)


def test_full_video_path(make_consult: MakeConsult) -> None:
    consult = make_consult()
    accepted = consult.accept(SPECIALIST, T0 + timedelta(minutes=5))
    assert (accepted.state, accepted.specialist) == (ConsultState.ACCEPTED, SPECIALIST)
    assert accepted.accepted_at == T0 + timedelta(minutes=5)
    assert consult.state is ConsultState.REQUESTED  # records are immutable
    live = accepted.start_session(T0 + timedelta(minutes=7))
    assert live.state is ConsultState.IN_SESSION
    assert live.started_at == T0 + timedelta(minutes=7)
    done = live.complete(outcome(), T0 + timedelta(minutes=30))
    assert done.state is ConsultState.COMPLETED
    assert done.ended_at == T0 + timedelta(minutes=30)
    assert done.outcome == outcome()


def test_store_and_forward_completes_without_a_session(make_consult: MakeConsult) -> None:
    accepted = make_consult().accept(SPECIALIST, T0 + timedelta(minutes=1))
    done = accepted.complete(outcome(), T0 + timedelta(hours=2))
    assert done.state is ConsultState.COMPLETED
    assert done.started_at is None


def test_overdue_request_can_still_be_accepted_until_it_expires(make_consult: MakeConsult) -> None:
    consult = make_consult(urgency=Urgency.URGENT)  # respond by +60 min, expires +6 h
    late = consult.accept(SPECIALIST, T0 + timedelta(hours=5, minutes=59))
    assert late.state is ConsultState.ACCEPTED
    with pytest.raises(IllegalTransition, match="expired"):
        consult.accept(SPECIALIST, T0 + timedelta(hours=6))


def test_requester_cannot_accept_own_request(make_consult: MakeConsult) -> None:
    consult = make_consult()
    with pytest.raises(InvalidValue) as info:
        consult.accept(consult.requester, T0)
    assert info.value.field == "consult.specialist"


def test_complete_needs_acceptance_first(make_consult: MakeConsult) -> None:
    with pytest.raises(IllegalTransition):
        make_consult().complete(outcome(), T0)


def test_cancel_before_session_only(make_consult: MakeConsult) -> None:
    consult = make_consult()
    cancelled = consult.cancel(consult.requester, T0 + timedelta(minutes=2), "pasien membaik")
    assert cancelled.state is ConsultState.CANCELLED
    assert (cancelled.cancelled_by, cancelled.cancel_reason) == (consult.requester, "pasien membaik")
    accepted = consult.accept(SPECIALIST, T0)
    assert accepted.cancel(SPECIALIST, T0).state is ConsultState.CANCELLED
    live = accepted.start_session(T0)
    with pytest.raises(IllegalTransition):
        live.cancel(SPECIALIST, T0)
    with pytest.raises(IllegalTransition):
        cancelled.accept(SPECIALIST, T0)


def test_expire_only_when_due_and_only_while_waiting(make_consult: MakeConsult) -> None:
    consult = make_consult(urgency=Urgency.EMERGENCY)
    with pytest.raises(IllegalTransition, match="not expired yet"):
        consult.expire(T0 + timedelta(minutes=59))
    expired = consult.expire(T0 + timedelta(hours=1))
    assert expired.state is ConsultState.EXPIRED
    assert expired.ended_at == T0 + timedelta(hours=1)
    accepted = consult.accept(SPECIALIST, T0)
    with pytest.raises(IllegalTransition):
        accepted.expire(T0 + timedelta(days=1))


def test_escalation_is_recorded_once(make_consult: MakeConsult) -> None:
    consult = make_consult()
    first = consult.mark_escalated(T0 + timedelta(minutes=61))
    again = first.mark_escalated(T0 + timedelta(minutes=70))
    assert again.escalated_at == T0 + timedelta(minutes=61)
    assert first.state is ConsultState.REQUESTED  # a flag, not a state
    with pytest.raises(IllegalTransition):
        consult.accept(SPECIALIST, T0).mark_escalated(T0)


def test_naive_times_are_refused(make_consult: MakeConsult) -> None:
    consult = make_consult()
    with pytest.raises(InvalidValue) as info:
        consult.accept(SPECIALIST, datetime(2025, 3, 3, 9, 0))
    assert info.value.field == "now"


def test_record_invariants_are_checked(make_consult: MakeConsult) -> None:
    consult = make_consult()
    with pytest.raises(InvalidValue) as info:
        dataclasses.replace(consult, state=ConsultState.ACCEPTED)
    assert info.value.field == "consult.specialist"
    with pytest.raises(InvalidValue) as info:
        dataclasses.replace(consult, respond_by=T0 - timedelta(seconds=1))
    assert info.value.field == "consult.respond_by"
    with pytest.raises(InvalidValue) as info:
        dataclasses.replace(consult, state="requested")  # type: ignore[arg-type]
    assert info.value.field == "consult.state"
    with pytest.raises(dataclasses.FrozenInstanceError):
        consult.state = ConsultState.ACCEPTED  # type: ignore[misc]
