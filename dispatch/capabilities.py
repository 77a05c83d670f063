"""The vocabulary of unit capabilities.

Capabilities are plain strings so an edited triage table or a unit record
can name them, but only words from this vocabulary are accepted: a typo
("als " or "ALS") must fail loudly rather than silently match no unit.
"""

from __future__ import annotations

from dispatch._checks import check_words

__all__ = ["CAPABILITIES", "parse_capabilities"]

CAPABILITIES: frozenset[str] = frozenset(
    {
        "bls",  # basic life support
        "als",  # advanced life support (paramedic/doctor, drugs, monitor)
        "transport",  # can carry a patient on a stretcher
        "aed",  # automated external defibrillator on board
        "obstetric",  # delivery kit and a midwife/trained crew
        "neonatal",  # newborn care (incubator, neonatal resuscitation)
        "rescue",  # extrication and water/height rescue gear
    }
)


def parse_capabilities(values: object, field: str = "capabilities") -> frozenset[str]:
    """Validate a collection of capability words into a frozenset."""
    return check_words(values, field, CAPABILITIES, "capability")
