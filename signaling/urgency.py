"""Consult urgency and the two clocks it sets: respond-by and expiry.

A consult request has two deadlines, both fixed when it is made:

``respond_by``
    An on-call specialist should accept it by then. Past it the request is
    **overdue**: a *flag*, not a state. It is escalated (the admins and every
    on-call specialist of the specialty are told) and it can still be accepted.
``expires_at``
    Past it nobody can accept the request any more; the server moves it to the
    terminal ``expired`` state (the puskesmas must refer or re-request).

``respond_by <= expires_at`` always; the defaults are

============  ==========  ==========
urgency       respond by  expires
============  ==========  ==========
emergency     10 min      1 h
urgent        60 min      6 h
routine       24 h        72 h
============  ==========  ==========

and both are configurable per urgency (`DeadlinePolicy`). Deadlines are stored on
the consult, so changing the policy never moves an existing request's deadlines.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import NamedTuple

from . import _check
from .errors import InvalidValue

__all__ = ["DeadlinePolicy", "Deadlines", "Urgency", "UrgencyTimes"]


class Urgency(StrEnum):
    """How soon the puskesmas needs an answer. Served in this order."""

    EMERGENCY = "emergency"
    URGENT = "urgent"
    ROUTINE = "routine"

    @property
    def rank(self) -> int:
        """0 for the most urgent; queues sort ascending on it."""
        return _RANK[self]


_RANK = {Urgency.EMERGENCY: 0, Urgency.URGENT: 1, Urgency.ROUTINE: 2}


@dataclass(frozen=True, slots=True)
class UrgencyTimes:
    """Respond-by and expiry delays for one urgency level."""

    respond_within: timedelta
    expire_after: timedelta

    def __post_init__(self) -> None:
        if self.respond_within <= timedelta(0):
            raise InvalidValue("respond_within", "must be positive")
        if self.expire_after < self.respond_within:
            raise InvalidValue("expire_after", "must not be shorter than respond_within")


class Deadlines(NamedTuple):
    respond_by: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class DeadlinePolicy:
    """Per-urgency delays; defaults are 10 min / 60 min / 24 h to respond."""

    emergency: UrgencyTimes = field(
        default=UrgencyTimes(timedelta(minutes=10), timedelta(hours=1))
    )
    urgent: UrgencyTimes = field(default=UrgencyTimes(timedelta(minutes=60), timedelta(hours=6)))
    routine: UrgencyTimes = field(default=UrgencyTimes(timedelta(hours=24), timedelta(hours=72)))

    def times(self, urgency: Urgency) -> UrgencyTimes:
        if urgency is Urgency.EMERGENCY:
            return self.emergency
        if urgency is Urgency.URGENT:
            return self.urgent
        return self.routine

    def deadlines(self, urgency: Urgency, requested_at: datetime) -> Deadlines:
        """The respond-by and expiry instants of a request made at ``requested_at``."""
        _check.aware(requested_at, "requested_at")
        times = self.times(urgency)
        return Deadlines(requested_at + times.respond_within, requested_at + times.expire_after)
