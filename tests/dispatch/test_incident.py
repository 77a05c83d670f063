"""dispatch.incident and dispatch.outcome: the incident lifecycle and closing outcomes."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

import pytest

from dispatch.call import Call
from dispatch.errors import IllegalTransition, InvalidInput
from dispatch.ids import IncidentId
from dispatch.incident import (
    Incident,
    IncidentState,
    incident_transition,
    next_incident_states,
    parse_incident_state,
    state_for_unit_status,
)
from dispatch.outcome import Outcome, parse_outcome
from dispatch.priority import Priority
from dispatch.status import UnitStatus

I = IncidentState  # noqa: E741
T0 = datetime(2024, 5, 1, 8, 0, tzinfo=timezone(timedelta(hours=7)))
CALL = Call(phone="081234567890", received_at=T0, call_type="chest_pain")

LEGAL = {
    (I.OPEN, I.DISPATCHED),
    (I.OPEN, I.CLOSED),
    (I.DISPATCHED, I.ON_SCENE),
    (I.DISPATCHED, I.OPEN),
    (I.DISPATCHED, I.CLOSED),
    (I.ON_SCENE, I.TRANSPORTING),
    (I.ON_SCENE, I.CLOSED),
    (I.TRANSPORTING, I.AT_HOSPITAL),
    (I.AT_HOSPITAL, I.CLOSED),
}


def incident(**changes: object) -> Incident:
    fields: dict[str, object] = {"id": IncidentId("inc-1"), "call": CALL, "priority": Priority.MERAH}
    fields.update(changes)
    return Incident(**fields)  # type: ignore[arg-type]


def test_values() -> None:
    assert [s.value for s in IncidentState] == [
        "open",
        "dispatched",
        "on_scene",
        "transporting",
        "at_hospital",
        "closed",
    ]
    assert [o.value for o in Outcome] == [
        "emergency",
        "information",
        "silent",
        "prank",
        "duplicate",
        "transfer",
    ]
    assert Outcome.PRANK.label_id == "Panggilan iseng"
    assert Outcome.SILENT.label_en == "Silent call"
    assert Outcome.TRANSFER.sends_unit and not Outcome.INFORMATION.sends_unit


def test_transition_table() -> None:
    for current, target in itertools.product(IncidentState, repeat=2):
        if (current, target) in LEGAL:
            assert incident_transition(current, target) is target
        else:
            with pytest.raises(IllegalTransition) as info:
                incident_transition(current, target)
            assert info.value.lifecycle == "incident"
    assert next_incident_states(I.OPEN) == (I.DISPATCHED, I.CLOSED)
    assert next_incident_states(I.CLOSED) == ()


def test_full_episode() -> None:
    inc = incident()
    assert inc.state is I.OPEN and inc.is_open and inc.created_at == T0
    for state in (I.DISPATCHED, I.ON_SCENE, I.TRANSPORTING, I.AT_HOSPITAL):
        inc = inc.advance(state)
    closed = inc.close(Outcome.EMERGENCY, T0 + timedelta(minutes=50))
    assert closed.state is I.CLOSED and closed.outcome is Outcome.EMERGENCY
    assert not closed.is_open
    with pytest.raises(IllegalTransition):
        closed.advance(I.OPEN)


@pytest.mark.parametrize("outcome", [Outcome.INFORMATION, Outcome.SILENT, Outcome.PRANK, Outcome.TRANSFER])
def test_close_directly_with_a_non_emergency_outcome(outcome: Outcome) -> None:
    closed = incident().close(outcome, T0 + timedelta(minutes=2))
    assert closed.outcome is outcome and closed.closed_at == T0 + timedelta(minutes=2)


def test_duplicate_needs_the_original() -> None:
    original = IncidentId("inc-0")
    closed = incident().close(Outcome.DUPLICATE, T0, duplicate_of=original)
    assert closed.duplicate_of == original
    with pytest.raises(InvalidInput) as info:
        incident().close(Outcome.DUPLICATE, T0)
    assert info.value.field == "duplicate_of"
    with pytest.raises(InvalidInput) as info:
        incident().close(Outcome.PRANK, T0, duplicate_of=original)
    assert info.value.field == "duplicate_of"
    with pytest.raises(InvalidInput) as info:
        incident().close(Outcome.DUPLICATE, T0, duplicate_of=IncidentId("inc-1"))
    assert info.value.field == "duplicate_of"


def test_cannot_close_from_transporting() -> None:
    moving = incident().advance(I.DISPATCHED).advance(I.ON_SCENE).advance(I.TRANSPORTING)
    with pytest.raises(IllegalTransition):
        moving.close(Outcome.EMERGENCY, T0)


def test_advance_refuses_closed() -> None:
    with pytest.raises(InvalidInput) as info:
        incident().advance(I.CLOSED)
    assert info.value.field == "state"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"id": ""}, "id"),
        ({"priority": "merah"}, "priority"),
        ({"call": "a call"}, "call"),
        ({"state": I.CLOSED}, "outcome"),
        ({"outcome": Outcome.PRANK}, "outcome"),
        ({"state": I.CLOSED, "outcome": Outcome.PRANK}, "closed_at"),
        ({"state": I.CLOSED, "outcome": Outcome.PRANK, "closed_at": T0 - timedelta(seconds=1)}, "closed_at"),
    ],
)
def test_incident_validation_names_the_field(changes: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as info:
        incident(**changes)
    assert info.value.field == field


def test_state_follows_units_forward_only() -> None:
    assert state_for_unit_status(I.OPEN, UnitStatus.DISPATCHED) is I.DISPATCHED
    assert state_for_unit_status(I.DISPATCHED, UnitStatus.EN_ROUTE) is None
    assert state_for_unit_status(I.DISPATCHED, UnitStatus.ON_SCENE) is I.ON_SCENE
    assert state_for_unit_status(I.ON_SCENE, UnitStatus.EN_ROUTE) is None  # a second unit
    assert state_for_unit_status(I.ON_SCENE, UnitStatus.TRANSPORTING) is I.TRANSPORTING
    assert state_for_unit_status(I.TRANSPORTING, UnitStatus.AT_HOSPITAL) is I.AT_HOSPITAL
    assert state_for_unit_status(I.AT_HOSPITAL, UnitStatus.AVAILABLE) is None
    assert state_for_unit_status(I.CLOSED, UnitStatus.ON_SCENE) is None


def test_parsers() -> None:
    assert parse_incident_state("on_scene") is I.ON_SCENE
    assert parse_outcome("prank") is Outcome.PRANK
    with pytest.raises(InvalidInput) as info:
        parse_outcome("hoax")
    assert info.value.field == "outcome"
    with pytest.raises(InvalidInput) as info:
        parse_incident_state(3)
    assert info.value.field == "state"
