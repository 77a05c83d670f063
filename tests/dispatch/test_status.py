"""dispatch.status: the unit status machine, exhaustively."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

import pytest

from dispatch.errors import IllegalTransition, InvalidInput
from dispatch.ids import UnitId
from dispatch.status import (
    BUSY,
    Actor,
    ReleaseReason,
    StatusChange,
    UnitStatus,
    allowed_actors,
    next_statuses,
    parse_unit_status,
    required_reasons,
    transition,
)

S = UnitStatus
R = ReleaseReason
CREW = frozenset({Actor.CREW, Actor.SERVER})
SERVER = frozenset({Actor.SERVER})
T0 = datetime(2024, 5, 1, 8, 0, tzinfo=timezone(timedelta(hours=7)))

# The whole table, written out independently of the module: (from, to) -> (actors, reasons).
EXPECTED: dict[tuple[UnitStatus, UnitStatus], tuple[frozenset[Actor], frozenset[ReleaseReason]]] = {
    (S.AVAILABLE, S.DISPATCHED): (SERVER, frozenset()),
    (S.AVAILABLE, S.UNAVAILABLE): (CREW, frozenset()),
    (S.AVAILABLE, S.OFF_DUTY): (CREW, frozenset()),
    (S.DISPATCHED, S.EN_ROUTE): (CREW, frozenset()),
    (S.DISPATCHED, S.AVAILABLE): (SERVER, frozenset({R.CANCELLED, R.NOT_RESPONDING})),
    (S.EN_ROUTE, S.ON_SCENE): (CREW, frozenset()),
    (S.EN_ROUTE, S.AVAILABLE): (SERVER, frozenset({R.CANCELLED})),
    (S.ON_SCENE, S.TRANSPORTING): (CREW, frozenset()),
    (S.ON_SCENE, S.AVAILABLE): (CREW, frozenset({R.TREATED_ON_SCENE, R.REFUSED_TRANSPORT, R.NO_PATIENT})),
    (S.TRANSPORTING, S.AT_HOSPITAL): (CREW, frozenset()),
    (S.AT_HOSPITAL, S.AVAILABLE): (CREW, frozenset()),
    (S.UNAVAILABLE, S.AVAILABLE): (CREW, frozenset()),
    (S.UNAVAILABLE, S.OFF_DUTY): (CREW, frozenset()),
    (S.OFF_DUTY, S.AVAILABLE): (CREW, frozenset()),
    (S.OFF_DUTY, S.UNAVAILABLE): (CREW, frozenset()),
}


def test_values() -> None:
    assert [s.value for s in UnitStatus] == [
        "available",
        "dispatched",
        "en_route",
        "on_scene",
        "transporting",
        "at_hospital",
        "unavailable",
        "off_duty",
    ]
    assert BUSY == {S.DISPATCHED, S.EN_ROUTE, S.ON_SCENE, S.TRANSPORTING, S.AT_HOSPITAL}
    assert S.EN_ROUTE.is_busy and not S.AVAILABLE.is_busy and not S.OFF_DUTY.is_busy


@pytest.mark.parametrize(
    ("edge", "spec"), list(EXPECTED.items()), ids=[f"{a.value}->{b.value}" for a, b in EXPECTED]
)
def test_every_legal_transition(
    edge: tuple[UnitStatus, UnitStatus], spec: tuple[frozenset[Actor], frozenset[ReleaseReason]]
) -> None:
    current, target = edge
    actors, reasons = spec
    assert allowed_actors(current, target) == actors
    assert required_reasons(current, target) == reasons
    reason = min(reasons, key=lambda r: r.value) if reasons else None
    for actor in actors:
        assert transition(current, target, actor, reason) is target
    for actor in set(Actor) - actors:
        with pytest.raises(IllegalTransition):
            transition(current, target, actor, reason)


def test_every_other_pair_is_illegal_for_everyone() -> None:
    illegal = [(a, b) for a, b in itertools.product(UnitStatus, repeat=2) if (a, b) not in EXPECTED]
    assert len(illegal) == 64 - len(EXPECTED)
    for current, target in illegal:
        assert allowed_actors(current, target) == frozenset()
        for actor in Actor:
            with pytest.raises(IllegalTransition) as info:
                transition(current, target, actor)
            assert info.value.current == current.value
            assert info.value.target == target.value


def test_the_usual_cycle() -> None:
    cycle = [S.AVAILABLE, S.DISPATCHED, S.EN_ROUTE, S.ON_SCENE, S.TRANSPORTING, S.AT_HOSPITAL, S.AVAILABLE]
    for current, target in itertools.pairwise(cycle):
        actor = Actor.SERVER if target is S.DISPATCHED else Actor.CREW
        assert transition(current, target, actor) is target


@pytest.mark.parametrize("busy", [s for s in UnitStatus if s in BUSY])
def test_no_off_duty_in_the_middle_of_a_dispatch(busy: UnitStatus) -> None:
    for target in (S.OFF_DUTY, S.UNAVAILABLE):
        with pytest.raises(IllegalTransition):
            transition(busy, target, Actor.SERVER)


def test_crew_cannot_dispatch_itself() -> None:
    with pytest.raises(IllegalTransition) as info:
        transition(S.AVAILABLE, S.DISPATCHED, Actor.CREW)
    assert "only server may" in str(info.value)
    assert info.value.allowed == ("unavailable", "off_duty")


def test_message_lists_the_allowed_moves() -> None:
    with pytest.raises(IllegalTransition) as info:
        transition(S.EN_ROUTE, S.AT_HOSPITAL, Actor.CREW)
    assert str(info.value) == (
        "unit status (crew): cannot go from 'en_route' to 'at_hospital' (allowed: on_scene)"
    )


def test_next_statuses_for_the_field_page() -> None:
    assert next_statuses(S.DISPATCHED, Actor.CREW) == (S.EN_ROUTE,)
    assert next_statuses(S.DISPATCHED) == (S.AVAILABLE, S.EN_ROUTE)
    assert next_statuses(S.AVAILABLE, Actor.CREW) == (S.UNAVAILABLE, S.OFF_DUTY)
    assert next_statuses(S.AVAILABLE, Actor.SERVER) == (S.DISPATCHED, S.UNAVAILABLE, S.OFF_DUTY)
    assert next_statuses(S.ON_SCENE, Actor.CREW) == (S.AVAILABLE, S.TRANSPORTING)
    assert next_statuses(S.TRANSPORTING) == (S.AT_HOSPITAL,)
    for status in UnitStatus:
        assert next_statuses(status)  # no dead ends


def test_reasons() -> None:
    assert transition(S.DISPATCHED, S.AVAILABLE, Actor.SERVER, R.NOT_RESPONDING) is S.AVAILABLE
    with pytest.raises(InvalidInput) as info:
        transition(S.DISPATCHED, S.AVAILABLE, Actor.SERVER)
    assert info.value.field == "reason"
    assert "cancelled, not_responding" in str(info.value)
    with pytest.raises(InvalidInput) as info:
        transition(S.EN_ROUTE, S.AVAILABLE, Actor.SERVER, R.NOT_RESPONDING)
    assert info.value.field == "reason"
    with pytest.raises(InvalidInput) as info:
        transition(S.EN_ROUTE, S.ON_SCENE, Actor.CREW, R.CANCELLED)
    assert info.value.field == "reason"


def test_status_change_validates_on_construction() -> None:
    change = StatusChange(UnitId("AMB-01"), S.DISPATCHED, S.AVAILABLE, T0, Actor.SERVER, R.CANCELLED)
    assert change.reason is R.CANCELLED
    with pytest.raises(IllegalTransition):
        StatusChange(UnitId("AMB-01"), S.EN_ROUTE, S.OFF_DUTY, T0, Actor.CREW)
    with pytest.raises(InvalidInput) as info:
        StatusChange(UnitId("AMB-01"), S.EN_ROUTE, S.ON_SCENE, datetime(2024, 5, 1), Actor.CREW)
    assert info.value.field == "at"
    with pytest.raises(InvalidInput) as info:
        StatusChange(UnitId("AMB-01"), "en_route", S.ON_SCENE, T0, Actor.CREW)  # type: ignore[arg-type]
    assert info.value.field == "previous"


def test_parse_unit_status() -> None:
    assert parse_unit_status("en_route") is S.EN_ROUTE
    with pytest.raises(InvalidInput) as info:
        parse_unit_status("EN ROUTE", "status")
    assert info.value.field == "status"
