"""Choosing the destination hospital: which hospitals can treat the call, nearest first.

A hospital's ``services`` are what it can treat at all (region data: a cath lab
for STEMI, CT for stroke...); the triage table names the one service a call
type needs, if any. The ranking puts the hospitals that have it first, by
ambulance ETA, then the others, marked incapable, so the operator still sees
them (a patient in arrest goes to the nearest door whatever it lacks).

Every hospital is one ``Hospital`` value and the ranking's inputs are keyword
arguments: what a hospital reports later (free beds by class, each with its
time) is one more field of ``Hospital`` and one more keyword (the age after
which a figure is stale), not a new shape.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from dispatch._checks import check_text, check_words
from dispatch.errors import InvalidInput
from dispatch.geo import Point, distance_m

__all__ = [
    "NEAREST_LACKS_SERVICE",
    "NO_HOSPITAL_HAS_SERVICE",
    "SERVICES",
    "Hospital",
    "HospitalWarning",
    "RankedHospital",
    "Ranking",
    "parse_service",
    "parse_services",
    "rank_hospitals",
]

SERVICES: frozenset[str] = frozenset(
    {
        "cath_lab",  # primary PCI for STEMI, around the clock
        "ct",  # CT scanner with a radiologist: stroke, head injury
        "icu",  # adult intensive care
        "nicu",  # neonatal intensive care
        "picu",  # paediatric intensive care
        "obstetrics",  # delivery room and an obstetrician (PONEK)
        "trauma_surgery",  # emergency surgery for major trauma, theatre open at night
        "burns",  # burn unit
    }
)

NEAREST_LACKS_SERVICE = "nearest_lacks_service"
NO_HOSPITAL_HAS_SERVICE = "no_hospital_has_service"

# Seconds from the scene to a hospital's location (the straight-line or road ETA of an ambulance).
EtaFn = Callable[[Point, Point], float]


def parse_services(values: object, field: str = "services") -> frozenset[str]:
    """Validate a list of hospital service names into a frozenset."""
    return check_words(values, field, SERVICES, "service")


def parse_service(value: object, field: str = "service") -> str | None:
    """The one service a call type needs, or None when it needs none."""
    if value is None:
        return None
    if not isinstance(value, str) or value not in SERVICES:
        raise InvalidInput(field, f"unknown service {value!r}; known: {', '.join(sorted(SERVICES))}")
    return value


@dataclass(frozen=True, slots=True)
class Hospital:
    """A destination: its code, name, location and the services it has."""

    code: str
    name: str
    location: Point
    services: frozenset[str]

    def __post_init__(self) -> None:
        check_text(self.code, "code", max_len=64, allow_empty=False)
        check_text(self.name, "name", max_len=200, allow_empty=False)
        if not isinstance(self.location, Point):
            raise InvalidInput("location", "must be a Point")
        if not isinstance(self.services, frozenset):
            raise InvalidInput("services", "must be a frozenset")
        parse_services(sorted(self.services))


@dataclass(frozen=True, slots=True)
class RankedHospital:
    hospital: Hospital
    distance_m: float
    eta_s: float
    capable: bool  # has the needed service (always, when the call needs none)


@dataclass(frozen=True, slots=True)
class HospitalWarning:
    """Something the operator must see before choosing: ``kind`` says what, about which hospital and service."""

    kind: str
    service: str
    hospital: str | None = None  # the hospital concerned, by code
    hospital_name: str | None = None
    nearest_capable: str | None = None  # the nearest hospital that has the service, by code

    def to_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "service": self.service,
            "hospital": self.hospital,
            "hospital_name": self.hospital_name,
            "nearest_capable": self.nearest_capable,
        }


@dataclass(frozen=True, slots=True)
class Ranking:
    needed_service: str | None
    hospitals: tuple[RankedHospital, ...]
    warnings: tuple[HospitalWarning, ...]


def rank_hospitals(
    scene: Point,
    hospitals: Iterable[Hospital],
    *,
    needed_service: str | None,
    eta: EtaFn,
) -> Ranking:
    """Capable hospitals first by ETA, then the others; ties by code; with the warnings the operator needs."""
    service = parse_service(needed_service, "needed_service")
    ranked = []
    for hospital in hospitals:
        ranked.append(
            RankedHospital(
                hospital=hospital,
                distance_m=distance_m(scene, hospital.location),
                eta_s=eta(scene, hospital.location),
                capable=service is None or service in hospital.services,
            )
        )
    ranked.sort(key=lambda r: (not r.capable, r.eta_s, r.hospital.code))
    return Ranking(service, tuple(ranked), _warnings(service, ranked))


def _warnings(service: str | None, ranked: list[RankedHospital]) -> tuple[HospitalWarning, ...]:
    if service is None or not ranked:
        return ()
    capable = [r for r in ranked if r.capable]
    if not capable:
        return (HospitalWarning(NO_HOSPITAL_HAS_SERVICE, service),)
    soonest = min(r.eta_s for r in ranked)
    if capable[0].eta_s <= soonest:
        return ()  # a capable hospital is (one of) the nearest
    nearest = min((r for r in ranked if r.eta_s == soonest), key=lambda r: r.hospital.code)
    return (
        HospitalWarning(
            NEAREST_LACKS_SERVICE, service, nearest.hospital.code, nearest.hospital.name, capable[0].hospital.code
        ),
    )
