"""The pre-arrival notice's lifecycle, and the ETA a receiving hospital is shown.

A notice goes to the destination hospital as soon as one is set::

    sent -> acknowledged -> handed_over
    sent | acknowledged -> withdrawn     (the operator or the crew chose another hospital)
    sent | acknowledged -> declined      (the hospital cannot take the patient: the operator chooses again)
    sent -> handed_over                  (the ambulance arrived before anyone acknowledged)

Declined, withdrawn and handed over are final. Who may make each move is the server's business (a
hospital account for its own notices; the crew may record a handover too); which moves exist is here.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType

from dispatch.errors import IllegalTransition, InvalidInput

__all__ = ["OPEN", "NoticeStatus", "eta_to_hospital_s", "move", "parse_reason"]


class NoticeStatus(enum.Enum):
    SENT = "sent"
    ACKNOWLEDGED = "acknowledged"
    DECLINED = "declined"
    WITHDRAWN = "withdrawn"
    HANDED_OVER = "handed_over"


_TRANSITIONS: Mapping[NoticeStatus, frozenset[NoticeStatus]] = MappingProxyType({
    NoticeStatus.SENT: frozenset({NoticeStatus.ACKNOWLEDGED, NoticeStatus.DECLINED, NoticeStatus.WITHDRAWN, NoticeStatus.HANDED_OVER}),
    NoticeStatus.ACKNOWLEDGED: frozenset({NoticeStatus.DECLINED, NoticeStatus.WITHDRAWN, NoticeStatus.HANDED_OVER}),
    NoticeStatus.DECLINED: frozenset(),
    NoticeStatus.WITHDRAWN: frozenset(),
    NoticeStatus.HANDED_OVER: frozenset(),
})
#: The notices a hospital still expects a patient from.
OPEN: frozenset[NoticeStatus] = frozenset({NoticeStatus.SENT, NoticeStatus.ACKNOWLEDGED})
REASON_MAX = 500


def move(current: NoticeStatus, target: NoticeStatus) -> NoticeStatus:
    """``target`` if the lifecycle allows the move, else IllegalTransition."""
    allowed = _TRANSITIONS[current]
    if target not in allowed:
        raise IllegalTransition("notice", current.value, target.value, tuple(sorted(s.value for s in allowed)))
    return target


def parse_reason(value: object) -> str:
    """A decline's reason: what the operator reads before choosing again, so it must say something."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("reason", "say why the hospital cannot take the patient")
    if len(value) > REASON_MAX or any(ord(c) < 32 for c in value):
        raise InvalidInput("reason", f"must be one line of at most {REASON_MAX} characters")
    return value.strip()


def eta_to_hospital_s(status: str, drive_s: float | None) -> float | None:
    """Seconds until the unit reaches the hospital as of its last position: the drive while it carries the
    patient, 0 once it is there, unknown (None) before it has the patient on board."""
    if status == "at_hospital":
        return 0.0
    if status == "transporting":
        return drive_s
    return None
