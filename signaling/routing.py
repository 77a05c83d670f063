"""Who sees a consult request, in what order, and who is told when it is late.

Decisions only: the server stores them and delivers the notifications.

* `OnCallRoster` — which specialists are on call for which specialty right now
  (an in-memory cache the server rebuilds from PostgreSQL).
* `waiting_queue` — waiting requests, most urgent first, then longest waiting,
  then by id so that equal requests always come out in the same order.
* `overdue` / `should_expire` — the two clocks of `signaling.urgency`.
* `new_request_notice` / `escalation` / `sweep` — whom to notify, as values.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from . import _check
from .consult import Consult, ConsultState
from .ids import ConsultId, UserId
from .specialty import Specialty
from .urgency import Urgency

__all__ = [
    "Escalation",
    "OnCallRoster",
    "RequestNotice",
    "Sweep",
    "escalation",
    "new_request_notice",
    "overdue",
    "queue_key",
    "should_expire",
    "sweep",
    "waiting_queue",
]


class OnCallRoster:
    """Specialists on call per specialty. A user may cover several specialties."""

    def __init__(self) -> None:
        self._on_call: dict[Specialty, set[UserId]] = {}

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[UserId, Specialty]]) -> OnCallRoster:
        roster = cls()
        for user, specialty in pairs:
            roster.set_on_call(user, specialty, True)
        return roster

    def set_on_call(self, user: UserId, specialty: Specialty, on: bool) -> bool:
        """Put ``user`` on or off call for ``specialty``; True if that changed anything."""
        _check.identifier(user, "user")
        specialty = _check.choice(Specialty, specialty, "specialty")
        users = self._on_call.setdefault(specialty, set())
        before = user in users
        if on:
            users.add(user)
        else:
            users.discard(user)
        return before != on

    def off_duty(self, user: UserId) -> frozenset[Specialty]:
        """Take ``user`` off call everywhere; returns the specialties it covered."""
        covered = self.specialties_of(user)
        for specialty in covered:
            self._on_call[specialty].discard(user)
        return covered

    def on_call_for(self, specialty: Specialty) -> tuple[UserId, ...]:
        """The specialists on call for ``specialty``, sorted for determinism."""
        return tuple(sorted(self._on_call.get(specialty, ())))

    def is_on_call(self, user: UserId, specialty: Specialty) -> bool:
        return user in self._on_call.get(specialty, ())

    def specialties_of(self, user: UserId) -> frozenset[Specialty]:
        return frozenset(s for s, users in self._on_call.items() if user in users)


def queue_key(consult: Consult) -> tuple[int, datetime, str]:
    """Sort key: urgency rank, then request time (oldest first), then id."""
    return (consult.urgency.rank, consult.requested_at, consult.id)


def waiting_queue(
    consults: Iterable[Consult], specialty: Specialty | None = None
) -> list[Consult]:
    """The requests still waiting for a specialist (of ``specialty`` if given), in order."""
    waiting = [
        c
        for c in consults
        if c.state is ConsultState.REQUESTED and (specialty is None or c.specialty is specialty)
    ]
    return sorted(waiting, key=queue_key)


def overdue(consult: Consult, now: datetime) -> bool:
    """A waiting request past its respond-by time (it may still be accepted)."""
    _check.aware(now, "now")
    return consult.state is ConsultState.REQUESTED and now >= consult.respond_by


def should_expire(consult: Consult, now: datetime) -> bool:
    """A waiting request past its expiry: the server moves it to ``expired``."""
    _check.aware(now, "now")
    return consult.state is ConsultState.REQUESTED and now >= consult.expires_at


def _recipients(consult: Consult, *groups: Iterable[UserId]) -> tuple[UserId, ...]:
    everyone = {user for group in groups for user in group}
    everyone.discard(consult.requester)
    return tuple(sorted(everyone))


@dataclass(frozen=True, slots=True)
class RequestNotice:
    """Whom to tell about a new request: the on-call specialists of its specialty,
    or, when nobody is on call (``unstaffed``), the admins straight away."""

    consult_id: ConsultId
    specialty: Specialty
    urgency: Urgency
    specialists: tuple[UserId, ...]
    admins: tuple[UserId, ...]

    @property
    def unstaffed(self) -> bool:
        return not self.specialists

    @property
    def recipients(self) -> tuple[UserId, ...]:
        return tuple(sorted(set(self.specialists) | set(self.admins)))


def new_request_notice(
    consult: Consult, roster: OnCallRoster, admins: Iterable[UserId]
) -> RequestNotice:
    specialists = _recipients(consult, roster.on_call_for(consult.specialty))
    return RequestNotice(
        consult_id=consult.id,
        specialty=consult.specialty,
        urgency=consult.urgency,
        specialists=specialists,
        admins=() if specialists else _recipients(consult, admins),
    )


@dataclass(frozen=True, slots=True)
class Escalation:
    """An overdue request to re-announce: every on-call specialist of the specialty
    and every admin. The server sends it, then records `Consult.mark_escalated`."""

    consult_id: ConsultId
    specialty: Specialty
    urgency: Urgency
    respond_by: datetime
    overdue_by: timedelta
    specialists: tuple[UserId, ...]
    admins: tuple[UserId, ...]

    @property
    def recipients(self) -> tuple[UserId, ...]:
        return tuple(sorted(set(self.specialists) | set(self.admins)))


def escalation(
    consult: Consult, now: datetime, roster: OnCallRoster, admins: Iterable[UserId]
) -> Escalation | None:
    """The escalation due for ``consult`` at ``now``, or None.

    None when it is not overdue, was already escalated, or is due to expire
    instead (expiry wins over escalation).
    """
    if not overdue(consult, now) or consult.escalated_at is not None:
        return None
    if should_expire(consult, now):
        return None
    return Escalation(
        consult_id=consult.id,
        specialty=consult.specialty,
        urgency=consult.urgency,
        respond_by=consult.respond_by,
        overdue_by=now - consult.respond_by,
        specialists=_recipients(consult, roster.on_call_for(consult.specialty)),
        admins=_recipients(consult, admins),
    )


@dataclass(frozen=True, slots=True)
class Sweep:
    """What a periodic check finds: requests to expire and escalations to send."""

    expire: tuple[ConsultId, ...]
    escalate: tuple[Escalation, ...]


def sweep(
    consults: Iterable[Consult], now: datetime, roster: OnCallRoster, admins: Iterable[UserId]
) -> Sweep:
    """Check every waiting request at ``now``, in queue order."""
    admin_list = tuple(admins)
    expire: list[ConsultId] = []
    escalate: list[Escalation] = []
    for consult in waiting_queue(consults):
        if should_expire(consult, now):
            expire.append(consult.id)
        elif (decision := escalation(consult, now, roster, admin_list)) is not None:
            escalate.append(decision)
    return Sweep(tuple(expire), tuple(escalate))
