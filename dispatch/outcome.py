"""How a call ended. Every call gets exactly one outcome when it is closed."""

from __future__ import annotations

import enum

from dispatch.errors import InvalidInput

__all__ = ["Outcome", "parse_outcome"]


class Outcome(enum.Enum):
    EMERGENCY = "emergency"  # a real emergency: a unit was (or should have been) sent
    INFORMATION = "information"  # information only (advice, a hospital's number, ...)
    SILENT = "silent"  # "ghost" call: nobody spoke
    PRANK = "prank"  # marked by the operator; repeat numbers get flagged at intake
    DUPLICATE = "duplicate"  # another call about an incident already open
    TRANSFER = "transfer"  # non-emergency transport between facilities

    @property
    def label_id(self) -> str:
        return _LABELS[self][0]

    @property
    def label_en(self) -> str:
        return _LABELS[self][1]

    @property
    def sends_unit(self) -> bool:
        """Whether this kind of call normally gets a unit."""
        return self in (Outcome.EMERGENCY, Outcome.TRANSFER)


_LABELS = {
    Outcome.EMERGENCY: ("Gawat darurat", "Emergency"),
    Outcome.INFORMATION: ("Informasi", "Information only"),
    Outcome.SILENT: ("Panggilan diam", "Silent call"),
    Outcome.PRANK: ("Panggilan iseng", "Prank call"),
    Outcome.DUPLICATE: ("Panggilan ganda", "Duplicate call"),
    Outcome.TRANSFER: ("Rujukan / transportasi", "Non-emergency transfer"),
}


def parse_outcome(value: object, field: str = "outcome") -> Outcome:
    if isinstance(value, Outcome):
        return value
    if not isinstance(value, str):
        raise InvalidInput(field, f"must be a string, got {type(value).__name__}")
    try:
        return Outcome(value)
    except ValueError:
        known = ", ".join(o.value for o in Outcome)
        raise InvalidInput(field, f"unknown outcome {value!r}; known: {known}") from None
