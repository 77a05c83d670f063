"""Triage priority: the Indonesian triage colours merah, kuning, hijau."""

from __future__ import annotations

import enum

from dispatch.errors import InvalidInput

__all__ = ["Priority", "parse_priority"]


class Priority(enum.Enum):
    """Merah (P1) is life-threatening and is served first.

    Ordering follows service order: ``MERAH < KUNING < HIJAU``, so
    ``sorted(calls, key=lambda c: c.priority)`` puts merah at the front.
    """

    MERAH = "merah"
    KUNING = "kuning"
    HIJAU = "hijau"

    @property
    def rank(self) -> int:
        """1 for merah (P1), 2 for kuning, 3 for hijau."""
        return _RANK[self]

    @property
    def code(self) -> str:
        """``"P1"``, ``"P2"`` or ``"P3"``."""
        return f"P{_RANK[self]}"

    def outranks(self, other: Priority) -> bool:
        """True when this priority is served before ``other``."""
        return self.rank < other.rank

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Priority):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Priority):
            return NotImplemented
        return self.rank <= other.rank

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Priority):
            return NotImplemented
        return self.rank > other.rank

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Priority):
            return NotImplemented
        return self.rank >= other.rank


_RANK = {Priority.MERAH: 1, Priority.KUNING: 2, Priority.HIJAU: 3}

# Operators type colours in Indonesian or English, or the P-codes.
_ALIASES = {
    "merah": Priority.MERAH,
    "p1": Priority.MERAH,
    "red": Priority.MERAH,
    "kuning": Priority.KUNING,
    "p2": Priority.KUNING,
    "yellow": Priority.KUNING,
    "hijau": Priority.HIJAU,
    "p3": Priority.HIJAU,
    "green": Priority.HIJAU,
}


def parse_priority(value: object, field: str = "priority") -> Priority:
    """Parse "merah"/"kuning"/"hijau", "P1"/"P2"/"P3" (any case) or a Priority."""
    if isinstance(value, Priority):
        return value
    if not isinstance(value, str):
        raise InvalidInput(field, f"must be a string, got {type(value).__name__}")
    try:
        return _ALIASES[value.strip().lower()]
    except KeyError:
        raise InvalidInput(
            field, f"unknown priority {value!r}; use merah, kuning, hijau or P1, P2, P3"
        ) from None
