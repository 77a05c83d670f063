"""Entries of an incident's timeline, as the server hands them to exports."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from dispatch._checks import check_aware, check_text
from dispatch.errors import InvalidInput
from dispatch.ids import UnitId, unit_id

__all__ = ["TimelineEntry"]

_EVENT = re.compile(r"[a-z][a-z0-9_.]{0,63}")


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """Something that happened to an incident at ``at``.

    ``event`` is a short code (``call_received``, ``unit_dispatched``,
    ``unit_status.on_scene``...), ``unit_id`` the unit concerned if any,
    ``text`` free text for people.
    """

    at: datetime
    event: str
    unit_id: UnitId | None = None
    text: str = ""

    def __post_init__(self) -> None:
        check_aware(self.at, "at")
        if not isinstance(self.event, str) or not _EVENT.fullmatch(self.event):
            raise InvalidInput("event", "must be a lowercase code like unit_dispatched")
        if self.unit_id is not None:
            unit_id(self.unit_id)
        check_text(self.text, "text", max_len=2000)
