"""The consult lifecycle: states, the transition table, and the consult record.

::

    requested ─accept─▶ accepted ─start_session─▶ in_session ─complete─▶ completed
     │    │               │    └──────complete (store-and-forward)─────────▲
     │    └─cancel─▶ cancelled ◀─cancel─┘
     └─expire─▶ expired

*Overdue* is not a state: a request past its ``respond_by`` is escalated
(``escalated_at`` records that it was) and can still be accepted until
``expires_at``; see `signaling.urgency` and `signaling.routing`. Once in session a
consult can only be completed: a dropped call is a reconnect, not a new state.

`Consult` is an immutable record; each action returns the next record and the
server stores it (with its event) in one transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Final

from . import _check
from .errors import IllegalTransition, InvalidValue
from .ids import ConsultId, UserId
from .outcome import Outcome
from .patient import PatientSummary
from .specialty import Language, Specialty
from .urgency import DeadlinePolicy, Urgency

__all__ = [
    "TRANSITIONS",
    "Consult",
    "ConsultEvent",
    "ConsultState",
    "ServiceType",
    "allowed_events",
    "transition",
]

CANCEL_REASON_MAX = 500


class ConsultState(StrEnum):
    REQUESTED = "requested"
    ACCEPTED = "accepted"
    IN_SESSION = "in_session"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"

    @property
    def terminal(self) -> bool:
        return not TRANSITIONS[self]

    @property
    def has_room(self) -> bool:
        """Accepted or in session: the doctors may be in the video room."""
        return self in (ConsultState.ACCEPTED, ConsultState.IN_SESSION)


class ConsultEvent(StrEnum):
    ACCEPT = "accept"
    START_SESSION = "start_session"
    COMPLETE = "complete"
    CANCEL = "cancel"
    EXPIRE = "expire"


_S = ConsultState
_E = ConsultEvent

#: state -> {event -> next state}; a missing pair is an illegal transition.
TRANSITIONS: Final[Mapping[ConsultState, Mapping[ConsultEvent, ConsultState]]] = {
    _S.REQUESTED: {_E.ACCEPT: _S.ACCEPTED, _E.CANCEL: _S.CANCELLED, _E.EXPIRE: _S.EXPIRED},
    _S.ACCEPTED: {
        _E.START_SESSION: _S.IN_SESSION,
        _E.COMPLETE: _S.COMPLETED,  # store-and-forward: a written answer, no video
        _E.CANCEL: _S.CANCELLED,
    },
    _S.IN_SESSION: {_E.COMPLETE: _S.COMPLETED},
    _S.COMPLETED: {},
    _S.CANCELLED: {},
    _S.EXPIRED: {},
}


def transition(state: ConsultState, event: ConsultEvent) -> ConsultState:
    """The state after ``event``; raises `IllegalTransition` if the table forbids it."""
    try:
        return TRANSITIONS[state][event]
    except KeyError:
        raise IllegalTransition(state.value, event.value) from None


def allowed_events(state: ConsultState) -> frozenset[ConsultEvent]:
    return frozenset(TRANSITIONS[state])


class ServiceType(StrEnum):
    """Facility-to-facility telemedicine services (Permenkes 20/2019)."""

    TELECONSULTATION = "teleconsultation"
    TELE_RADIOLOGY = "tele_radiology"
    TELE_EKG = "tele_ekg"
    TELE_USG = "tele_usg"

    def label(self, language: Language = "id") -> str:
        indonesian, english = _SERVICE_LABELS[self]
        return indonesian if language == "id" else english


_SERVICE_LABELS: dict[ServiceType, tuple[str, str]] = {
    ServiceType.TELECONSULTATION: ("Telekonsultasi klinis", "Clinical teleconsultation"),
    ServiceType.TELE_RADIOLOGY: ("Teleradiologi", "Tele-radiology"),
    ServiceType.TELE_EKG: ("Teleelektrokardiografi", "Tele-electrocardiography"),
    ServiceType.TELE_USG: ("Teleultrasonografi", "Tele-ultrasonography"),
}

# Which optional fields each state requires (True), forbids (False) or allows (None).
_SHAPE: Mapping[ConsultState, Mapping[str, bool | None]] = {
    _S.REQUESTED: {"specialist": False, "accepted_at": False, "started_at": False,
                   "ended_at": False, "outcome": False},
    _S.ACCEPTED: {"specialist": True, "accepted_at": True, "started_at": False,
                  "ended_at": False, "outcome": False},
    _S.IN_SESSION: {"specialist": True, "accepted_at": True, "started_at": True,
                    "ended_at": False, "outcome": False},
    _S.COMPLETED: {"specialist": True, "accepted_at": True, "started_at": None,
                   "ended_at": True, "outcome": True},
    _S.CANCELLED: {"specialist": None, "accepted_at": None, "started_at": False,
                   "ended_at": True, "outcome": False},
    _S.EXPIRED: {"specialist": False, "accepted_at": False, "started_at": False,
                 "ended_at": True, "outcome": False},
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Consult:
    """One consult request and how far it got. Build a new one with `Consult.request`."""

    id: ConsultId
    requester: UserId
    specialty: Specialty
    service: ServiceType
    urgency: Urgency
    patient: PatientSummary
    requested_at: datetime
    respond_by: datetime
    expires_at: datetime
    state: ConsultState = ConsultState.REQUESTED
    specialist: UserId | None = None
    accepted_at: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    outcome: Outcome | None = None
    escalated_at: datetime | None = None
    cancelled_by: UserId | None = None
    cancel_reason: str | None = None

    def __post_init__(self) -> None:
        _check.identifier(self.id, "consult.id")
        _check.identifier(self.requester, "consult.requester")
        for name, enum in (
            ("specialty", Specialty),
            ("service", ServiceType),
            ("urgency", Urgency),
            ("state", ConsultState),
        ):
            if not isinstance(getattr(self, name), enum):
                raise InvalidValue(f"consult.{name}", f"must be a {enum.__name__}")
        if not isinstance(self.patient, PatientSummary):
            raise InvalidValue("consult.patient", "must be a patient summary")
        for name in ("requested_at", "respond_by", "expires_at"):
            _check.aware(getattr(self, name), f"consult.{name}")
        for name in ("accepted_at", "started_at", "ended_at", "escalated_at"):
            if getattr(self, name) is not None:
                _check.aware(getattr(self, name), f"consult.{name}")
        if not self.requested_at <= self.respond_by <= self.expires_at:
            raise InvalidValue("consult.respond_by", "must lie between requested_at and expires_at")
        if self.specialist is not None:
            _check.identifier(self.specialist, "consult.specialist")
            if self.specialist == self.requester:
                raise InvalidValue("consult.specialist", "cannot be the requesting doctor")
        if (self.specialist is None) != (self.accepted_at is None):
            raise InvalidValue("consult.accepted_at", "is set exactly when a specialist accepted")
        for name, rule in _SHAPE[self.state].items():
            present = getattr(self, name) is not None
            if rule is not None and present != rule:
                verb = "requires" if rule else "must not have"
                raise InvalidValue(f"consult.{name}", f"a {self.state.value} consult {verb} it")
        if self.outcome is not None and not isinstance(self.outcome, Outcome):
            raise InvalidValue("consult.outcome", "must be an outcome")
        if self.state is not ConsultState.CANCELLED and (
            self.cancelled_by is not None or self.cancel_reason is not None
        ):
            raise InvalidValue("consult.cancelled_by", "only a cancelled consult has it")
        if self.cancelled_by is not None:
            _check.identifier(self.cancelled_by, "consult.cancelled_by")
        if self.cancel_reason is not None:
            _check.text(self.cancel_reason, "consult.cancel_reason", max_len=CANCEL_REASON_MAX)

    @classmethod
    def request(
        cls,
        id: ConsultId,
        requester: UserId,
        specialty: Specialty,
        service: ServiceType,
        urgency: Urgency,
        patient: PatientSummary,
        now: datetime,
        policy: DeadlinePolicy = DeadlinePolicy(),
    ) -> Consult:
        """A new request made at ``now``, its deadlines fixed from ``policy``."""
        respond_by, expires_at = policy.deadlines(urgency, _check.aware(now, "now"))
        return cls(
            id=id,
            requester=requester,
            specialty=specialty,
            service=service,
            urgency=urgency,
            patient=patient,
            requested_at=now,
            respond_by=respond_by,
            expires_at=expires_at,
        )

    def _next(self, event: ConsultEvent) -> ConsultState:
        return transition(self.state, event)

    def accept(self, specialist: UserId, now: datetime) -> Consult:
        """The specialist takes the request; refused once it has expired."""
        state = self._next(ConsultEvent.ACCEPT)
        if _check.aware(now, "now") >= self.expires_at:
            raise IllegalTransition(
                self.state.value, ConsultEvent.ACCEPT.value, "the request has expired"
            )
        return replace(self, state=state, specialist=specialist, accepted_at=now)

    def start_session(self, now: datetime) -> Consult:
        """Both doctors are in the video room for the first time."""
        state = self._next(ConsultEvent.START_SESSION)
        return replace(self, state=state, started_at=_check.aware(now, "now"))

    def complete(self, outcome: Outcome, now: datetime) -> Consult:
        """Close with notes and a decision, after a session or store-and-forward."""
        state = self._next(ConsultEvent.COMPLETE)
        return replace(self, state=state, outcome=outcome, ended_at=_check.aware(now, "now"))

    def cancel(self, by: UserId, now: datetime, reason: str | None = None) -> Consult:
        """Withdrawn before any session (whether ``by`` may cancel is `signaling.access`'s rule)."""
        state = self._next(ConsultEvent.CANCEL)
        return replace(
            self,
            state=state,
            ended_at=_check.aware(now, "now"),
            cancelled_by=by,
            cancel_reason=reason,
        )

    def expire(self, now: datetime) -> Consult:
        """Nobody accepted in time; refused before ``expires_at``."""
        state = self._next(ConsultEvent.EXPIRE)
        if _check.aware(now, "now") < self.expires_at:
            raise IllegalTransition(
                self.state.value, ConsultEvent.EXPIRE.value, "the request has not expired yet"
            )
        return replace(self, state=state, ended_at=now)

    def mark_escalated(self, now: datetime) -> Consult:
        """Record that the overdue escalation went out (only the first time counts)."""
        if self.state is not ConsultState.REQUESTED:
            raise IllegalTransition(
                self.state.value, "escalate", "only a waiting request escalates"
            )
        if self.escalated_at is not None:
            return self
        return replace(self, escalated_at=_check.aware(now, "now"))
