"""Field units: their kind, capabilities, base, live position and status."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType

from dispatch._checks import check_aware, check_text
from dispatch.capabilities import parse_capabilities
from dispatch.errors import InvalidInput
from dispatch.geo import Point
from dispatch.ids import UnitId, unit_id
from dispatch.status import UnitStatus

__all__ = ["DEFAULT_CAPABILITIES", "POSSIBLE_CAPABILITIES", "Unit", "UnitKind", "parse_unit_kind", "unit_capabilities"]


class UnitKind(enum.Enum):
    AMBULANCE = "ambulance"
    MOTORBIKE = "motorbike"  # a two-paramedic motorbike team: first response, no stretcher


# What a newly registered unit of each kind carries when its record names
# nothing: a PSC ambulance has an AED on board; hospital ambulances add "als",
# some add "obstetric"/"neonatal".
DEFAULT_CAPABILITIES: Mapping[UnitKind, frozenset[str]] = MappingProxyType(
    {
        UnitKind.MOTORBIKE: frozenset({"bls", "aed"}),
        UnitKind.AMBULANCE: frozenset({"bls", "aed", "transport"}),
    }
)

# What a unit of each kind can carry at all: a motorbike has no stretcher, no
# incubator and no extrication gear, so a record claiming them is a mistake
# that would rank the motorbike for a labour or a newborn.
POSSIBLE_CAPABILITIES: Mapping[UnitKind, frozenset[str]] = MappingProxyType(
    {
        UnitKind.MOTORBIKE: frozenset({"bls", "als", "aed", "obstetric"}),
        UnitKind.AMBULANCE: frozenset({"bls", "als", "aed", "transport", "obstetric", "neonatal", "rescue"}),
    }
)


def unit_capabilities(kind: UnitKind, given: object, field: str = "capabilities") -> frozenset[str]:
    """The capabilities to record for a unit: the kind's defaults when none are given,
    else ``given`` if the kind can have every one of them (InvalidInput naming ``field`` if not)."""
    if given is None:
        return DEFAULT_CAPABILITIES[kind]
    capabilities = parse_capabilities(given, field)
    if not capabilities:
        return DEFAULT_CAPABILITIES[kind]
    impossible = sorted(capabilities - POSSIBLE_CAPABILITIES[kind])
    if impossible:
        raise InvalidInput(field, f"a {kind.value} cannot have {', '.join(impossible)}")
    return capabilities


def parse_unit_kind(value: object, field: str = "kind") -> UnitKind:
    if isinstance(value, UnitKind):
        return value
    if not isinstance(value, str):
        raise InvalidInput(field, f"must be a string, got {type(value).__name__}")
    try:
        return UnitKind(value)
    except ValueError:
        known = ", ".join(k.value for k in UnitKind)
        raise InvalidInput(field, f"unknown unit kind {value!r}; known: {known}") from None


@dataclass(frozen=True, slots=True)
class Unit:
    """A field unit as the dispatch core sees it.

    ``position`` and ``position_time`` come together: the latest GPS fix and
    when it was taken. A unit with no fix is ranked from its ``base``.
    """

    id: UnitId
    callsign: str
    kind: UnitKind
    capabilities: frozenset[str]
    base: Point
    status: UnitStatus
    position: Point | None = None
    position_time: datetime | None = None

    def __post_init__(self) -> None:
        unit_id(self.id, "id")
        check_text(self.callsign, "callsign", max_len=32, allow_empty=False)
        parse_unit_kind(self.kind)
        if not isinstance(self.capabilities, frozenset):
            raise InvalidInput("capabilities", "must be a frozenset")
        parse_capabilities(sorted(self.capabilities))
        if not isinstance(self.base, Point):
            raise InvalidInput("base", "must be a Point")
        if not isinstance(self.status, UnitStatus):
            raise InvalidInput("status", "must be a UnitStatus")
        if (self.position is None) != (self.position_time is None):
            raise InvalidInput("position_time", "position and position_time go together")
        if self.position is not None and not isinstance(self.position, Point):
            raise InvalidInput("position", "must be a Point")
        if self.position_time is not None:
            check_aware(self.position_time, "position_time")

    def has_capabilities(self, required: frozenset[str]) -> bool:
        return required <= self.capabilities

    def moved(self, point: Point, at: datetime) -> Unit:
        """This unit with a new fix."""
        return dataclasses.replace(self, position=point, position_time=at)

    def with_status(self, status: UnitStatus) -> Unit:
        """This unit with ``status`` (the caller has checked the transition)."""
        return dataclasses.replace(self, status=status)
