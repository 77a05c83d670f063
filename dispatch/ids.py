"""Typed ids: a unit id and an incident id are both text but must never be mixed."""

from __future__ import annotations

from typing import NewType

from dispatch._checks import check_text
from dispatch.errors import InvalidInput

__all__ = ["IncidentId", "UnitId", "incident_id", "unit_id"]

UnitId = NewType("UnitId", str)
IncidentId = NewType("IncidentId", str)

_MAX_ID_LEN = 64


def _check_id(value: object, field: str) -> str:
    text = check_text(value, field, max_len=_MAX_ID_LEN, allow_empty=False)
    # Ids travel in URLs, logs and EIDO references: no whitespace anywhere.
    if any(c.isspace() for c in text):
        raise InvalidInput(field, "must not contain whitespace")
    return text


def unit_id(value: object, field: str = "unit_id") -> UnitId:
    """Validate text (a uuid string, a callsign) as a UnitId."""
    return UnitId(_check_id(value, field))


def incident_id(value: object, field: str = "incident_id") -> IncidentId:
    """Validate text (a uuid string) as an IncidentId."""
    return IncidentId(_check_id(value, field))
