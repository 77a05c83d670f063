"""The incident lifecycle: from a recorded call to a closed record with an outcome.

::

    open -> dispatched -> on_scene -> transporting -> at_hospital -> closed
      |         |  ^          |
      |         v  |          +--> closed (treated on scene, no transport)
      |       (open: every unit withdrawn, dispatch again)
      +--> closed (information, silent, prank, duplicate, or no unit needed)

Closing always records an outcome; ``duplicate`` also names the incident
the call duplicates. ``closed`` is final: a new call is a new incident.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType

from dispatch._checks import check_aware
from dispatch.call import Call
from dispatch.errors import IllegalTransition, InvalidInput
from dispatch.ids import IncidentId, incident_id
from dispatch.outcome import Outcome
from dispatch.priority import Priority
from dispatch.status import UnitStatus

__all__ = [
    "Incident",
    "IncidentState",
    "incident_transition",
    "next_incident_states",
    "parse_incident_state",
    "state_for_unit_status",
]


class IncidentState(enum.Enum):
    OPEN = "open"  # recorded, being triaged, no unit assigned
    DISPATCHED = "dispatched"  # at least one unit assigned
    ON_SCENE = "on_scene"  # the first unit arrived
    TRANSPORTING = "transporting"
    AT_HOSPITAL = "at_hospital"
    CLOSED = "closed"


_I = IncidentState
_TRANSITIONS: Mapping[IncidentState, frozenset[IncidentState]] = MappingProxyType(
    {
        _I.OPEN: frozenset({_I.DISPATCHED, _I.CLOSED}),
        _I.DISPATCHED: frozenset({_I.ON_SCENE, _I.OPEN, _I.CLOSED}),
        _I.ON_SCENE: frozenset({_I.TRANSPORTING, _I.CLOSED}),
        _I.TRANSPORTING: frozenset({_I.AT_HOSPITAL}),
        _I.AT_HOSPITAL: frozenset({_I.CLOSED}),
        _I.CLOSED: frozenset(),
    }
)

# Where a unit's progress takes its incident (the first unit to arrive puts
# the incident on scene; later units do not move it back).
_FOLLOWS: Mapping[UnitStatus, IncidentState] = MappingProxyType(
    {
        UnitStatus.DISPATCHED: _I.DISPATCHED,
        UnitStatus.EN_ROUTE: _I.DISPATCHED,
        UnitStatus.ON_SCENE: _I.ON_SCENE,
        UnitStatus.TRANSPORTING: _I.TRANSPORTING,
        UnitStatus.AT_HOSPITAL: _I.AT_HOSPITAL,
    }
)


def next_incident_states(current: IncidentState) -> tuple[IncidentState, ...]:
    """Legal next states, in declaration order."""
    allowed = _TRANSITIONS[current]
    return tuple(state for state in IncidentState if state in allowed)


def incident_transition(current: IncidentState, target: IncidentState) -> IncidentState:
    """Return ``target`` if the table allows the move, else raise IllegalTransition."""
    if target not in _TRANSITIONS[current]:
        allowed = tuple(s.value for s in next_incident_states(current))
        raise IllegalTransition("incident", current.value, target.value, allowed)
    return target


def state_for_unit_status(current: IncidentState, unit_status: UnitStatus) -> IncidentState | None:
    """The state a unit's new status moves its incident to, or None if it stays.

    Only forward, legal moves: a second unit going en route does not pull an
    on-scene incident back to dispatched.
    """
    target = _FOLLOWS.get(unit_status)
    if target is None or target not in _TRANSITIONS[current]:
        return None
    return target


def parse_incident_state(value: object, field: str = "state") -> IncidentState:
    if isinstance(value, IncidentState):
        return value
    if not isinstance(value, str):
        raise InvalidInput(field, f"must be a string, got {type(value).__name__}")
    try:
        return IncidentState(value)
    except ValueError:
        known = ", ".join(s.value for s in IncidentState)
        raise InvalidInput(field, f"unknown incident state {value!r}; known: {known}") from None


@dataclass(frozen=True, slots=True)
class Incident:
    """An incident: the call, its resolved priority, where it is in its lifecycle."""

    id: IncidentId
    call: Call
    priority: Priority
    state: IncidentState = IncidentState.OPEN
    outcome: Outcome | None = None
    duplicate_of: IncidentId | None = None
    closed_at: datetime | None = None

    def __post_init__(self) -> None:
        incident_id(self.id, "id")
        if not isinstance(self.call, Call):
            raise InvalidInput("call", "must be a Call")
        if not isinstance(self.priority, Priority):
            raise InvalidInput("priority", "must be a Priority")
        if not isinstance(self.state, IncidentState):
            raise InvalidInput("state", "must be an IncidentState")
        closed = self.state is IncidentState.CLOSED
        if closed != (self.outcome is not None):
            raise InvalidInput("outcome", "is set exactly when the incident is closed")
        if closed != (self.closed_at is not None):
            raise InvalidInput("closed_at", "is set exactly when the incident is closed")
        if self.outcome is not None and not isinstance(self.outcome, Outcome):
            raise InvalidInput("outcome", "must be an Outcome")
        if self.closed_at is not None:
            check_aware(self.closed_at, "closed_at")
            if self.closed_at < self.call.received_at:
                raise InvalidInput("closed_at", "must not be before the call was received")
        if (self.outcome is Outcome.DUPLICATE) != (self.duplicate_of is not None):
            raise InvalidInput("duplicate_of", "is required for, and only for, a duplicate")
        if self.duplicate_of is not None:
            incident_id(self.duplicate_of, "duplicate_of")
            if self.duplicate_of == self.id:
                raise InvalidInput("duplicate_of", "an incident cannot duplicate itself")

    @property
    def created_at(self) -> datetime:
        return self.call.received_at

    @property
    def is_open(self) -> bool:
        """Not closed yet (a candidate for duplicate detection)."""
        return self.state is not IncidentState.CLOSED

    def advance(self, target: IncidentState) -> Incident:
        """This incident moved to ``target`` (use ``close`` to close it)."""
        if target is IncidentState.CLOSED:
            raise InvalidInput("state", "use close() to close an incident with an outcome")
        return dataclasses.replace(self, state=incident_transition(self.state, target))

    def close(
        self, outcome: Outcome, at: datetime, duplicate_of: IncidentId | None = None
    ) -> Incident:
        """This incident closed with ``outcome`` at ``at``."""
        state = incident_transition(self.state, IncidentState.CLOSED)
        return dataclasses.replace(
            self, state=state, outcome=outcome, closed_at=at, duplicate_of=duplicate_of
        )
