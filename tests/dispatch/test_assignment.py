"""dispatch.assignment: the decisions behind sending, withdrawing, re-offering, progress and closing."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch import assignment as core
from dispatch.assignment import Decision, IncidentFacts, UnitFacts
from dispatch.doctrine import Needs, needs_from_capabilities
from dispatch.errors import (
    AlreadyServed,
    DispatchError,
    IllegalTransition,
    IncidentClosed,
    MissingCapabilities,
    NotWithdrawable,
    StaleVersion,
    UnitNotAvailable,
    UnitsStillAssigned,
)
from dispatch.incident import IncidentState, incident_transition
from dispatch.outcome import Outcome
from dispatch.status import BUSY, Actor, ReleaseReason, UnitStatus, next_statuses, required_reasons

I = IncidentState  # noqa: E741
S = UnitStatus
T0 = datetime(2024, 5, 1, 8, 0, tzinfo=timezone(timedelta(hours=7)))
STROKE = needs_from_capabilities(["bls", "transport"])
BIKE = UnitFacts("bike-1", S.AVAILABLE, frozenset({"bls", "aed"}))
AMB = UnitFacts("amb-1", S.AVAILABLE, frozenset({"bls", "als", "transport"}))
VAN = UnitFacts("van-1", S.AVAILABLE, frozenset({"rescue"}))


def opened(needs: Needs = STROKE, version: int = 0) -> IncidentFacts:
    return IncidentFacts(I.OPEN, version, needs)


def busy(unit: UnitFacts, status: UnitStatus = S.DISPATCHED) -> UnitFacts:
    return dataclasses.replace(unit, status=status)


def test_sending_the_first_unit_dispatches_the_incident_and_bumps_its_version_once() -> None:
    decision = core.assign(opened(version=3), (), BIKE, at=T0, expected_version=3)
    assert (decision.unit_status, decision.state, decision.version) == (S.DISPATCHED, I.DISPATCHED, 4)
    assert decision.milestones == {"first_dispatched_at": T0}
    [event] = decision.events
    assert event.type == "unit.dispatched"
    assert event.data == {"incident_status": "dispatched", "assignment_version": 4}
    # A further unit leaves the incident's state and its first dispatch time as they are.
    after = opened(version=3).after(decision)
    second = core.assign(after, (busy(BIKE),), AMB, at=T0 + timedelta(seconds=5))
    assert (second.state, second.version, second.milestones) == (I.DISPATCHED, 5, {})


def test_refusals_change_nothing_and_say_why() -> None:
    with pytest.raises(StaleVersion) as stale:
        core.assign(opened(version=2), (), BIKE, at=T0, expected_version=1)
    assert (stale.value.expected, stale.value.current) == (1, 2)
    with pytest.raises(IncidentClosed):
        core.assign(IncidentFacts(I.CLOSED, 5, STROKE), (), BIKE, at=T0)
    # A second first responder is sent only as additional ...
    with pytest.raises(AlreadyServed) as served:
        core.assign(IncidentFacts(I.DISPATCHED, 1, STROKE), (busy(BIKE),), UnitFacts("bike-2", S.AVAILABLE, frozenset({"bls"})), at=T0)
    assert served.value.serving == "bike-1"
    # ... but the carrier the call still needs is a new role, not a second unit for one.
    assert core.assign(IncidentFacts(I.DISPATCHED, 1, STROKE), (busy(BIKE),), AMB, at=T0).version == 2
    # Once a carrier serves, another carrier is a second one.
    with pytest.raises(AlreadyServed):
        core.assign(IncidentFacts(I.DISPATCHED, 2, STROKE), (busy(BIKE), busy(AMB)), dataclasses.replace(AMB, id="amb-2"), at=T0)
    with pytest.raises(MissingCapabilities) as missing:
        core.assign(opened(), (), VAN, at=T0)
    assert (missing.value.unit_id, missing.value.missing) == ("van-1", ("bls",))
    with pytest.raises(UnitNotAvailable) as taken:
        core.assign(opened(), (), busy(BIKE, S.EN_ROUTE), at=T0)
    assert taken.value.status == "en_route"
    with pytest.raises(UnitNotAvailable):
        core.assign(opened(), (), busy(BIKE, S.OFF_DUTY), at=T0)


def test_an_override_reason_sends_a_unit_lacking_the_needs_and_the_event_says_so() -> None:
    decision = core.assign(opened(), (), VAN, at=T0, override_reason="nearest crew, bystander CPR under way")
    assert decision.override is not None and decision.override.missing_capabilities == ("bls",)
    assert decision.events[0].data["override"] == {"reason": "nearest crew, bystander CPR under way", "missing_capabilities": ["bls"]}
    # A capable unit needs no reason, and records none.
    assert core.assign(opened(), (), BIKE, at=T0, override_reason="whatever").override is None


def test_withdrawing_the_last_unit_reopens_a_dispatched_incident() -> None:
    incident = IncidentFacts(I.DISPATCHED, 1, STROKE)
    decision = core.withdraw(incident, (busy(BIKE),), busy(BIKE), ReleaseReason.CANCELLED)
    assert (decision.unit_status, decision.state, decision.version) == (S.AVAILABLE, I.OPEN, 2)
    assert decision.events[0].type == "dispatch.withdrawn"
    assert decision.events[0].data == {"previous": "dispatched", "reason": "cancelled", "incident_status": "open", "assignment_version": 2}
    # Another unit still on it: it stays dispatched.
    kept = core.withdraw(incident, (busy(BIKE), busy(AMB)), busy(BIKE), ReleaseReason.NOT_RESPONDING)
    assert (kept.state, kept.version) == (I.DISPATCHED, 2)
    # On scene, the crew clears itself: the operator cannot withdraw it; and an acknowledged unit is not "not responding".
    with pytest.raises(NotWithdrawable):
        core.withdraw(IncidentFacts(I.ON_SCENE, 1, STROKE), (busy(BIKE, S.ON_SCENE),), busy(BIKE, S.ON_SCENE), ReleaseReason.CANCELLED)
    with pytest.raises(NotWithdrawable):
        core.withdraw(incident, (busy(BIKE, S.EN_ROUTE),), busy(BIKE, S.EN_ROUTE), ReleaseReason.NOT_RESPONDING)


def test_progress_moves_the_incident_forward_and_keeps_the_earliest_times() -> None:
    incident = IncidentFacts(I.DISPATCHED, 2, STROKE, {"first_dispatched_at": T0})
    ack = core.report(incident, (busy(BIKE), busy(AMB)), busy(BIKE), S.EN_ROUTE, actor=Actor.CREW, reason=None, at=T0 + timedelta(seconds=40))
    assert (ack.state, ack.version, ack.milestones) == (I.DISPATCHED, 2, {"first_acknowledged_at": T0 + timedelta(seconds=40)})
    incident = incident.after(ack)
    # A late report of an earlier acknowledgement by the other unit moves the first time back.
    late = core.report(incident, (busy(BIKE, S.EN_ROUTE), busy(AMB)), busy(AMB), S.EN_ROUTE, actor=Actor.CREW, reason=None,
                       at=T0 + timedelta(seconds=30))
    assert late.milestones == {"first_acknowledged_at": T0 + timedelta(seconds=30)}
    later = core.report(incident, (busy(BIKE, S.EN_ROUTE), busy(AMB)), busy(AMB), S.EN_ROUTE, actor=Actor.CREW, reason=None,
                        at=T0 + timedelta(seconds=50))
    assert later.milestones == {}
    scene = core.report(incident, (busy(BIKE, S.EN_ROUTE),), busy(BIKE, S.EN_ROUTE), S.ON_SCENE, actor=Actor.CREW, reason=None, at=T0)
    assert scene.state is I.ON_SCENE and scene.events[0].data["incident_status"] == "on_scene"
    assert scene.events[0].data["assignment_version"] == 2
    # Treated on scene: the unit leaves, the incident stays on scene (a handled incident, to be closed), the version moves.
    on_scene = incident.after(scene)
    done = core.report(on_scene, (busy(BIKE, S.ON_SCENE),), busy(BIKE, S.ON_SCENE), S.AVAILABLE, actor=Actor.CREW,
                       reason=ReleaseReason.TREATED_ON_SCENE, at=T0)
    assert (done.unit_status, done.state, done.version) == (S.AVAILABLE, I.ON_SCENE, 3)


def test_only_an_assignment_dispatches_a_unit_and_a_free_unit_changes_no_incident() -> None:
    with pytest.raises(IllegalTransition):
        core.report(None, (), BIKE, S.DISPATCHED, actor=Actor.SERVER, reason=None, at=T0)
    off = core.report(None, (), BIKE, S.OFF_DUTY, actor=Actor.SERVER, reason=None, at=T0)
    assert (off.unit_status, off.state, off.version) == (S.OFF_DUTY, None, None)
    assert "incident_status" not in off.events[0].data


def test_the_reoffer_takes_the_tier_the_incident_lacks() -> None:
    care_started = IncidentFacts(I.DISPATCHED, 3, STROKE)
    plan = core.reoffer(care_started, (busy(BIKE, S.EN_ROUTE),), "amb-1", ["amb-0"])
    assert plan == core.Reoffer(carrier=True, exclude=frozenset({"amb-0", "amb-1", "bike-1"}))
    # Nobody serves: the first responders' list, whatever did not answer.
    assert core.reoffer(IncidentFacts(I.OPEN, 3, STROKE), (), "amb-1", []) == core.Reoffer(False, frozenset({"amb-1"}))
    assert core.reoffer(IncidentFacts(I.CLOSED, 3, STROKE), (), "amb-1", []) is None


def test_closing_needs_every_unit_cleared_and_a_state_that_may_close() -> None:
    with pytest.raises(UnitsStillAssigned):
        core.close(IncidentFacts(I.DISPATCHED, 1, STROKE), (busy(BIKE),), Outcome.EMERGENCY)
    with pytest.raises(IllegalTransition):
        core.close(IncidentFacts(I.TRANSPORTING, 1, STROKE), (), Outcome.EMERGENCY)
    decision = core.close(IncidentFacts(I.ON_SCENE, 4, STROKE), (), Outcome.EMERGENCY)
    assert (decision.unit_status, decision.state, decision.version) == (None, I.CLOSED, 5)
    assert decision.events[0].data == {"outcome": "emergency", "incident_status": "closed", "assignment_version": 5}


# --- Any sequence of changes keeps the incident where the incident table allows ----------------------------

UNITS = (BIKE, AMB, VAN, UnitFacts("moto-2", S.AVAILABLE, frozenset({"bls"})))
TARGETS = tuple(UnitStatus)
REASONS = (None, *ReleaseReason)
step = st.one_of(
    st.tuples(st.just("assign"), st.integers(0, len(UNITS) - 1), st.booleans(), st.sampled_from([None, "reason"]), st.booleans()),
    st.tuples(st.just("withdraw"), st.integers(0, len(UNITS) - 1), st.sampled_from([ReleaseReason.CANCELLED, ReleaseReason.NOT_RESPONDING])),
    # Mostly a move the unit's table allows (with a reason it accepts), sometimes any move at all.
    st.tuples(st.just("report"), st.integers(0, len(UNITS) - 1), st.integers(0, 7), st.integers(0, 5), st.sampled_from(list(Actor)),
              st.integers(0, 4)),
    st.tuples(st.just("close"), st.sampled_from(list(Outcome))),
)


@settings(max_examples=300, deadline=None)
@given(steps=st.lists(step, max_size=40), needs=st.sampled_from([STROKE, needs_from_capabilities(["bls"]), needs_from_capabilities(["als", "aed"])]))
def test_any_sequence_keeps_the_incident_table_and_bumps_the_version_once_per_change(steps: list[tuple[object, ...]], needs: Needs) -> None:
    incident = opened(needs)
    units = {u.id: u for u in UNITS}
    serving: list[str] = []
    for op in steps:
        kind = op[0]
        before = incident
        try:
            if kind == "assign":
                _, i, additional, reason, current = op
                unit = units[UNITS[int(i)].id]  # type: ignore[call-overload]
                decision = core.assign(incident, tuple(units[s] for s in serving), unit, at=T0,
                                       expected_version=incident.version if current else incident.version + 1,
                                       additional=bool(additional), override_reason=reason)  # type: ignore[arg-type]
                bump, acted = 1, unit
            elif kind == "withdraw":
                unit = units[UNITS[int(op[1])].id]  # type: ignore[call-overload]
                if unit.id not in serving:
                    continue
                decision = core.withdraw(incident, tuple(units[s] for s in serving), unit, op[2])  # type: ignore[arg-type]
                bump, acted = 1, unit
            elif kind == "report":
                _, i, k, j, actor, wild = op
                unit = units[UNITS[int(i)].id]  # type: ignore[call-overload]
                target, reason = _move(unit.status, int(k), int(j), wild == 0)  # type: ignore[call-overload]
                on = unit.id in serving
                decision = core.report(incident if on else None, tuple(units[s] for s in serving), unit, target,  # type: ignore[arg-type]
                                       actor=actor, reason=reason, at=T0)  # type: ignore[arg-type]
                bump, acted = (1 if target is S.AVAILABLE else 0) if on else None, unit
            else:
                decision = core.close(incident, tuple(units[s] for s in serving), op[1])  # type: ignore[arg-type]
                bump, acted = 1, None
        except DispatchError:
            continue  # a refusal changes nothing: the model is left as it was
        if acted is not None:
            # The unit moved along its own status table.
            assert decision.unit_status in next_statuses(acted.status)
            units[acted.id] = dataclasses.replace(acted, status=decision.unit_status)
            if decision.unit_status is S.DISPATCHED:
                serving.append(acted.id)
            elif decision.unit_status is S.AVAILABLE and acted.id in serving:
                serving.remove(acted.id)
        if bump is None:  # a free unit's own change: no incident is involved
            assert decision.state is None and decision.version is None
            continue
        incident = _check(before, decision, bump)
        # A unit serves exactly while it is busy; an open incident has nobody on it, a dispatched one somebody.
        assert all(units[s].status in BUSY for s in serving)
        assert all(u.status not in BUSY for u in units.values() if u.id not in serving)
        assert (incident.state is I.OPEN) <= (not serving)
        assert (incident.state is I.DISPATCHED) <= bool(serving)


def _move(status: UnitStatus, k: int, j: int, wild: bool) -> tuple[UnitStatus, ReleaseReason | None]:
    if wild:
        return TARGETS[k % len(TARGETS)], REASONS[j % len(REASONS)]
    legal = next_statuses(status)
    target = legal[k % len(legal)]
    reasons = sorted(required_reasons(status, target), key=lambda r: r.value)
    return target, reasons[j % len(reasons)] if reasons else None


def _check(before: IncidentFacts, decision: Decision, bump: int) -> IncidentFacts:
    assert decision.state is not None and decision.version is not None
    if decision.state is not before.state:
        incident_transition(before.state, decision.state)  # the incident table allows the move
    assert decision.version == before.version + bump
    for event in decision.events:
        assert event.data["incident_status"] == decision.state.value
        assert event.data["assignment_version"] == decision.version
    return before.after(decision)
