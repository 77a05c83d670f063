"""The unit status lifecycle: states, who may move between them, and why.

Lifecycles are data (as in h11's ``_state.py``): ``_TRANSITIONS`` lists every
legal move, the actors allowed to make it, and the reasons it needs. The
usual cycle is::

    available -> dispatched -> en_route -> on_scene -> transporting
              -> at_hospital -> available

with ``on_scene -> available`` when the patient is treated on scene, and
``dispatched``/``en_route -> available`` when a dispatch is withdrawn.

Invariant the server relies on: a unit is attached to an incident exactly
while its status is busy (``BUSY``), and it leaves the incident only by
moving to ``available``. So ``unavailable`` and ``off_duty`` are reached only
from ``available`` (or each other): a crew cannot go off duty mid-dispatch.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType

from dispatch._checks import check_aware
from dispatch.errors import IllegalTransition, InvalidInput
from dispatch.ids import UnitId, unit_id

__all__ = [
    "BUSY",
    "Actor",
    "ReleaseReason",
    "StatusChange",
    "UnitStatus",
    "allowed_actors",
    "next_statuses",
    "parse_unit_status",
    "required_reasons",
    "transition",
]


class UnitStatus(enum.Enum):
    AVAILABLE = "available"
    DISPATCHED = "dispatched"  # assigned by the server, not yet acknowledged
    EN_ROUTE = "en_route"  # the crew acknowledged and is on the way
    ON_SCENE = "on_scene"
    TRANSPORTING = "transporting"  # carrying the patient to a hospital
    AT_HOSPITAL = "at_hospital"  # handing the patient over
    UNAVAILABLE = "unavailable"  # on duty but out of service (restocking, breakdown)
    OFF_DUTY = "off_duty"

    @property
    def is_busy(self) -> bool:
        """Attached to an incident."""
        return self in BUSY


BUSY: frozenset[UnitStatus] = frozenset(
    {
        UnitStatus.DISPATCHED,
        UnitStatus.EN_ROUTE,
        UnitStatus.ON_SCENE,
        UnitStatus.TRANSPORTING,
        UnitStatus.AT_HOSPITAL,
    }
)


class Actor(enum.Enum):
    """Who asks for a status change."""

    CREW = "crew"  # the field team's phone
    SERVER = "server"  # an operator in the console, or the server itself (assignment, ack timeout)


class ReleaseReason(enum.Enum):
    """Why a busy unit became available before (or instead of) a hospital handover."""

    CANCELLED = "cancelled"  # the operator withdrew the dispatch
    NOT_RESPONDING = "not_responding"  # no acknowledgement within the deadline
    TREATED_ON_SCENE = "treated_on_scene"
    REFUSED_TRANSPORT = "refused_transport"  # the patient declined to be taken
    NO_PATIENT = "no_patient"  # nobody found at the location (or a prank)


@dataclass(frozen=True, slots=True)
class _Edge:
    actors: frozenset[Actor]
    # Non-empty: the change must carry one of these reasons; empty: it must carry none.
    reasons: frozenset[ReleaseReason] = frozenset()


_S = UnitStatus
_CREW = frozenset({Actor.CREW})
_SERVER = frozenset({Actor.SERVER})
# Operators also set statuses on behalf of a crew that reports by radio.
_BOTH = frozenset({Actor.CREW, Actor.SERVER})

_TRANSITIONS: Mapping[UnitStatus, Mapping[UnitStatus, _Edge]] = MappingProxyType(
    {
        _S.AVAILABLE: {
            _S.DISPATCHED: _Edge(_SERVER),  # only through an atomic assignment
            _S.UNAVAILABLE: _Edge(_BOTH),
            _S.OFF_DUTY: _Edge(_BOTH),
        },
        _S.DISPATCHED: {
            _S.EN_ROUTE: _Edge(_BOTH),
            _S.AVAILABLE: _Edge(
                _SERVER, frozenset({ReleaseReason.CANCELLED, ReleaseReason.NOT_RESPONDING})
            ),
        },
        _S.EN_ROUTE: {
            _S.ON_SCENE: _Edge(_BOTH),
            _S.AVAILABLE: _Edge(_SERVER, frozenset({ReleaseReason.CANCELLED})),
        },
        _S.ON_SCENE: {
            _S.TRANSPORTING: _Edge(_BOTH),
            _S.AVAILABLE: _Edge(
                _BOTH,
                frozenset(
                    {
                        ReleaseReason.TREATED_ON_SCENE,
                        ReleaseReason.REFUSED_TRANSPORT,
                        ReleaseReason.NO_PATIENT,
                    }
                ),
            ),
        },
        _S.TRANSPORTING: {
            _S.AT_HOSPITAL: _Edge(_BOTH),
        },
        _S.AT_HOSPITAL: {
            _S.AVAILABLE: _Edge(_BOTH),
        },
        _S.UNAVAILABLE: {
            _S.AVAILABLE: _Edge(_BOTH),
            _S.OFF_DUTY: _Edge(_BOTH),
        },
        _S.OFF_DUTY: {
            _S.AVAILABLE: _Edge(_BOTH),
            _S.UNAVAILABLE: _Edge(_BOTH),
        },
    }
)


def next_statuses(current: UnitStatus, actor: Actor | None = None) -> tuple[UnitStatus, ...]:
    """The legal next statuses, in declaration order.

    With ``actor=Actor.CREW`` this is the set of buttons the field-team page
    shows; with ``None`` every legal move regardless of who makes it.
    """
    edges = _TRANSITIONS[current]
    return tuple(
        target
        for target in UnitStatus
        if target in edges and (actor is None or actor in edges[target].actors)
    )


def allowed_actors(current: UnitStatus, target: UnitStatus) -> frozenset[Actor]:
    """Who may make this move; empty when the move is illegal."""
    edge = _TRANSITIONS[current].get(target)
    return edge.actors if edge is not None else frozenset()


def required_reasons(current: UnitStatus, target: UnitStatus) -> frozenset[ReleaseReason]:
    """The reasons this move accepts (one is then required); empty when it takes none."""
    edge = _TRANSITIONS[current].get(target)
    return edge.reasons if edge is not None else frozenset()


def transition(
    current: UnitStatus,
    target: UnitStatus,
    actor: Actor = Actor.SERVER,
    reason: ReleaseReason | None = None,
) -> UnitStatus:
    """Return ``target`` if ``actor`` may move a unit there from ``current``.

    Raises IllegalTransition for a move the table lacks or the actor may not
    make, and InvalidInput (field ``reason``) when the reason is missing,
    not accepted, or given where none is expected.
    """
    edge = _TRANSITIONS[current].get(target)
    if edge is None or actor not in edge.actors:
        allowed = tuple(s.value for s in next_statuses(current, actor))
        detail = "" if edge is None else f"only {', '.join(sorted(a.value for a in edge.actors))} may"
        raise IllegalTransition(
            f"unit status ({actor.value})", current.value, target.value, allowed, detail
        )
    if edge.reasons:
        if reason is None or reason not in edge.reasons:
            choices = ", ".join(sorted(r.value for r in edge.reasons))
            raise InvalidInput("reason", f"{current.value} -> {target.value} needs one of: {choices}")
    elif reason is not None:
        raise InvalidInput("reason", f"{current.value} -> {target.value} takes no reason")
    return target


def parse_unit_status(value: object, field: str = "status") -> UnitStatus:
    if isinstance(value, UnitStatus):
        return value
    if not isinstance(value, str):
        raise InvalidInput(field, f"must be a string, got {type(value).__name__}")
    try:
        return UnitStatus(value)
    except ValueError:
        known = ", ".join(s.value for s in UnitStatus)
        raise InvalidInput(field, f"unknown status {value!r}; known: {known}") from None


@dataclass(frozen=True, slots=True)
class StatusChange:
    """One timestamped, validated status change: constructing it checks the move.

    The server stores it as the unit's history row and its event.
    """

    unit_id: UnitId
    previous: UnitStatus
    status: UnitStatus
    at: datetime
    actor: Actor
    reason: ReleaseReason | None = None

    def __post_init__(self) -> None:
        unit_id(self.unit_id)
        check_aware(self.at, "at")
        for name in ("previous", "status"):
            if not isinstance(getattr(self, name), UnitStatus):
                raise InvalidInput(name, "must be a UnitStatus")
        if not isinstance(self.actor, Actor):
            raise InvalidInput("actor", "must be an Actor")
        transition(self.previous, self.status, self.actor, self.reason)
