"""Assignment decisions: sending a unit, withdrawing it, offering the next, its progress, closing the incident.

The server loads the facts (the incident, the unit, the units serving the incident) with their rows
locked, asks one function here, and applies what it returns in the same transaction: the unit's new
status, the incident's new state, assignment version and milestone times, and the events to append.
Every event that changes an incident carries ``incident_status`` and ``assignment_version`` as decided
here, so no client works them out for itself.

The assignment version counts changes to who serves the incident: each unit sent, each unit released
(withdrawn or cleared) and the close bump it once. A unit's progress (en route, on scene, ...) moves the
incident's state but not its version: a recommendation the operator is looking at stays valid.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType

from dispatch.doctrine import Needs
from dispatch.errors import (
    AlreadyServed,
    IllegalTransition,
    IncidentClosed,
    InvalidInput,
    MissingCapabilities,
    NotWithdrawable,
    StaleVersion,
    UnitNotAvailable,
    UnitsStillAssigned,
)
from dispatch.incident import IncidentState, incident_transition, state_for_unit_status
from dispatch.outcome import Outcome
from dispatch.status import Actor, ReleaseReason, UnitStatus, next_statuses, transition

__all__ = [
    "MILESTONES",
    "Decision",
    "Event",
    "IncidentFacts",
    "Override",
    "Reoffer",
    "UnitFacts",
    "assign",
    "close",
    "reoffer",
    "report",
    "withdraw",
]

# The incident's first time at each step, by the crews' times (a late report may be the earlier one).
MILESTONES: Mapping[UnitStatus, str] = MappingProxyType(
    {
        UnitStatus.DISPATCHED: "first_dispatched_at",
        UnitStatus.EN_ROUTE: "first_acknowledged_at",
        UnitStatus.ON_SCENE: "first_on_scene_at",
    }
)


@dataclass(frozen=True, slots=True)
class UnitFacts:
    id: str
    status: UnitStatus
    capabilities: frozenset[str]


@dataclass(frozen=True, slots=True)
class IncidentFacts:
    state: IncidentState
    version: int
    needs: Needs
    # The milestone times so far, by name (``MILESTONES``); a missing one has not happened.
    milestones: Mapping[str, datetime] = dataclasses.field(default_factory=lambda: MappingProxyType({}))

    @property
    def closed(self) -> bool:
        return self.state is IncidentState.CLOSED

    def after(self, decision: Decision) -> IncidentFacts:
        """The incident as the decision leaves it."""
        if decision.state is None or decision.version is None:
            return self
        return dataclasses.replace(self, state=decision.state, version=decision.version,
                                   milestones=MappingProxyType({**self.milestones, **decision.milestones}))


@dataclass(frozen=True, slots=True)
class Event:
    """An event to append: its type and the data the core decided (the server adds ids and names)."""

    type: str
    data: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class Override:
    """A unit sent although it lacks what the call needs, and the operator's reason."""

    reason: str
    missing_capabilities: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        return {"reason": self.reason, "missing_capabilities": list(self.missing_capabilities)}


@dataclass(frozen=True, slots=True)
class Decision:
    """What one change does. ``state``/``version`` are None when the unit serves no incident."""

    unit_status: UnitStatus | None
    state: IncidentState | None
    version: int | None
    events: tuple[Event, ...]
    # Milestone times that change (name -> time).
    milestones: Mapping[str, datetime] = dataclasses.field(default_factory=lambda: MappingProxyType({}))
    override: Override | None = None


@dataclass(frozen=True, slots=True)
class Reoffer:
    """Where the unit that replaces an unanswered dispatch comes from."""

    carrier: bool  # the carriers' list; otherwise the first responders'
    exclude: frozenset[str]  # units not offered: those that did not answer this incident, and those serving it


def _incident_event(type: str, state: IncidentState, version: int, **data: object) -> Event:
    return Event(type, {**data, "incident_status": state.value, "assignment_version": version})


def _milestone(incident: IncidentFacts, status: UnitStatus, at: datetime) -> dict[str, datetime]:
    name = MILESTONES.get(status)
    if name is None:
        return {}
    known = incident.milestones.get(name)
    return {name: at} if known is None or at < known else {}


def assign(
    incident: IncidentFacts,
    serving: Sequence[UnitFacts],
    unit: UnitFacts,
    *,
    at: datetime,
    expected_version: int | None = None,
    additional: bool = False,
    override_reason: str | None = None,
) -> Decision:
    """Send ``unit``; ``serving`` are the units on the incident now, in the order they were sent.

    Refused, changing nothing: a closed incident; an ``expected_version`` that is not the incident's
    (the operator chose from an outdated list); a further unit while one serves, unless ``additional``
    or it is the carrier the call still needs (``Needs.carrier_next``); a unit lacking what the call
    needs in either tier without an ``override_reason``; a unit whose status cannot become dispatched.
    """
    if incident.closed:
        raise IncidentClosed()
    if expected_version is not None and expected_version != incident.version:
        raise StaleVersion(expected_version, incident.version)
    if serving and not additional:
        carrier_wanted = incident.needs.carrier_next(s.capabilities for s in serving)
        if not (carrier_wanted and incident.needs.carrier(unit.capabilities)):
            raise AlreadyServed(serving[0].id)
    missing = tuple(sorted(incident.needs.missing(unit.capabilities)))
    override = None
    if missing:
        if override_reason is None:
            raise MissingCapabilities(unit.id, missing)
        override = Override(override_reason, missing)
    try:
        status = transition(unit.status, UnitStatus.DISPATCHED, Actor.SERVER)
    except IllegalTransition:
        raise UnitNotAvailable(unit.id, unit.status.value) from None
    state = state_for_unit_status(incident.state, status) or incident.state
    version = incident.version + 1
    extra = {"override": override.to_dict()} if override else {}
    return Decision(status, state, version, (_incident_event("unit.dispatched", state, version, **extra),),
                    MappingProxyType(_milestone(incident, status, at)), override)


def _released(incident: IncidentFacts, serving: Sequence[UnitFacts], unit: UnitFacts) -> IncidentState:
    """The incident's state once ``unit`` leaves: a dispatch nobody serves any more waits for a unit again."""
    if incident.state is IncidentState.DISPATCHED and not any(s.id != unit.id for s in serving):
        return incident_transition(incident.state, IncidentState.OPEN)
    return incident.state


def withdraw(incident: IncidentFacts, serving: Sequence[UnitFacts], unit: UnitFacts, reason: ReleaseReason) -> Decision:
    """The operator cancels ``unit``'s dispatch (``cancelled``), or it went unanswered (``not_responding``)."""
    try:
        status = transition(unit.status, UnitStatus.AVAILABLE, Actor.SERVER, reason)
    except (IllegalTransition, InvalidInput):
        raise NotWithdrawable(unit.id, unit.status.value) from None
    state = _released(incident, serving, unit)
    version = incident.version + 1
    event = _incident_event("dispatch.withdrawn", state, version, previous=unit.status.value, reason=reason.value)
    return Decision(status, state, version, (event,))


def report(
    incident: IncidentFacts | None,
    serving: Sequence[UnitFacts],
    unit: UnitFacts,
    target: UnitStatus,
    *,
    actor: Actor,
    reason: ReleaseReason | None,
    at: datetime,
) -> Decision:
    """A status the crew reports (or an operator records for it) at ``at``; ``incident``: the one it serves.

    Moving to available releases the unit from its incident; a busy status moves the incident forward
    (the first unit on scene puts it on scene) and may set its first acknowledgement or arrival.
    Only an assignment dispatches a unit.
    """
    if target is UnitStatus.DISPATCHED:
        allowed = tuple(s.value for s in next_statuses(unit.status, actor) if s is not target)
        raise IllegalTransition("unit status", unit.status.value, target.value, allowed, "only an assignment dispatches a unit")
    transition(unit.status, target, actor, reason)
    data: dict[str, object] = {"status": target.value, "previous": unit.status.value,
                               "reason": reason.value if reason else None}
    if incident is None:
        return Decision(target, None, None, (Event("unit.status", data),))
    if target is UnitStatus.AVAILABLE:
        state, version, milestones = _released(incident, serving, unit), incident.version + 1, {}
    else:
        state = state_for_unit_status(incident.state, target) or incident.state
        version, milestones = incident.version, _milestone(incident, target, at)
    return Decision(target, state, version, (_incident_event("unit.status", state, version, **data),),
                    MappingProxyType(milestones))


def reoffer(
    incident: IncidentFacts, serving: Sequence[UnitFacts], withdrawn: str, unanswered: Iterable[str]
) -> Reoffer | None:
    """Which list replaces the unanswered ``withdrawn`` (``serving``: those still on it); None once closed.

    A carrier that did not answer is replaced by a carrier while care has started and nobody carries;
    otherwise the first responders' list. Units that did not answer this incident are not offered again.
    """
    if incident.closed:
        return None
    exclude = frozenset(unanswered) | {s.id for s in serving} | {withdrawn}
    return Reoffer(incident.needs.carrier_next(s.capabilities for s in serving), exclude)


def close(incident: IncidentFacts, serving: Sequence[UnitFacts], outcome: Outcome) -> Decision:
    """Close with ``outcome``: only from a state the incident table allows, and once every unit has cleared."""
    state = incident_transition(incident.state, IncidentState.CLOSED)
    if serving:
        raise UnitsStillAssigned()
    version = incident.version + 1
    return Decision(None, state, version, (_incident_event("incident.closed", state, version, outcome=outcome.value),))
