"""Tiered response: what a call needs from its first responder and whether it needs transport.

A triage row lists capabilities; ``transport`` among them means the patient
must be carried, every other word is care the first unit on scene must be
able to start. The two are recommended apart: the fastest units that can
start care (often a motorbike team) and the fastest units that can carry
(an ambulance), so a stretcher is never the reason care arrives late.
A unit that can do both appears in both lists.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from dispatch.capabilities import parse_capabilities
from dispatch.errors import InvalidInput
from dispatch.triage import TriageTable

__all__ = ["MINIMUM_CARE", "TRANSPORT", "UNTRIAGED", "Needs", "call_needs", "needs_from_capabilities"]

TRANSPORT = "transport"
# Whoever arrives first must at least be able to start basic life support.
MINIMUM_CARE: frozenset[str] = frozenset({"bls"})


@dataclass(frozen=True, slots=True)
class Needs:
    """Care capabilities the first responder must have, and whether a unit must carry the patient."""

    care: frozenset[str]
    transport: bool

    def __post_init__(self) -> None:
        if not isinstance(self.care, frozenset) or not self.care:
            raise InvalidInput("care", "must be a non-empty frozenset")
        if TRANSPORT in self.care:
            raise InvalidInput("care", "transport is not care")
        parse_capabilities(sorted(self.care), "care")
        if not isinstance(self.transport, bool):
            raise InvalidInput("transport", "must be a bool")

    def capabilities(self) -> list[str]:
        """The stored form: the care words, plus ``transport`` when it is needed."""
        return sorted(self.care | ({TRANSPORT} if self.transport else set()))

    def first_responder(self, capabilities: frozenset[str]) -> bool:
        return self.care <= capabilities

    def carrier(self, capabilities: frozenset[str]) -> bool:
        return self.transport and TRANSPORT in capabilities

    def carrier_next(self, serving: Iterable[frozenset[str]]) -> bool:
        """Whether the next unit to send should be a carrier: care has started (a first responder
        serves the call) and the call needs transport that no serving unit gives."""
        units = list(serving)
        return (self.transport and any(self.first_responder(c) for c in units)
                and not any(self.carrier(c) for c in units))

    def missing(self, capabilities: frozenset[str]) -> frozenset[str]:
        """What a unit lacks to serve this call in either tier (empty: it qualifies)."""
        if self.first_responder(capabilities) or self.carrier(capabilities):
            return frozenset()
        return self.care - capabilities


def needs_from_capabilities(values: Iterable[str], field: str = "capabilities") -> Needs:
    """The needs a triage row (or a stored incident) lists; care is at least basic life support."""
    words = parse_capabilities(values, field)
    care = words - {TRANSPORT}
    return Needs(care=care or MINIMUM_CARE, transport=TRANSPORT in words)


# A call without a type yet: basic life support first, and assume nothing about transport.
UNTRIAGED = Needs(care=MINIMUM_CARE, transport=False)


def call_needs(table: TriageTable, call_type: str | None) -> Needs:
    """What a call of ``call_type`` (None: not triaged yet) needs, by the table as it is now."""
    if call_type is None:
        return UNTRIAGED
    return needs_from_capabilities(table.get(call_type).capabilities, f"call_types.{call_type}.capabilities")
