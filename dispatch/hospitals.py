"""Choosing the destination hospital: which hospitals can treat the call, nearest first.

A hospital's ``services`` are what it can treat at all (region data: a cath lab
for STEMI, CT for stroke...); the triage table names the one service a call
type needs, if any. The ranking puts the hospitals that have it first, then the
others, marked incapable, so the operator still sees them (a patient in arrest
goes to the nearest door whatever it lacks).

Within each group, what the hospital reports now (``dispatch.availability``)
orders it: first those whose fresh figures show a free IGD bed and the needed
service running, then those whose figures are unknown or stale, then those whose
fresh figures say no bed or the service is down; by ambulance ETA within each.
No hospital is ever left out, and the warnings name the nearest hospital's
problem so the operator can overrule the order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from dispatch._checks import check_text, check_words
from dispatch.availability import DEFAULT_STALE_AFTER, Availability, Freshness, Readiness, freshness, readiness
from dispatch.errors import InvalidInput
from dispatch.geo import Point, distance_m

__all__ = [
    "NEAREST_FIGURES_STALE",
    "NEAREST_LACKS_SERVICE",
    "NEAREST_NO_IGD_BED",
    "NEAREST_SERVICE_DOWN",
    "NO_HOSPITAL_HAS_SERVICE",
    "READINESS_ORDER",
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
NEAREST_NO_IGD_BED = "nearest_no_igd_bed"  # its fresh figure: no free IGD bed
NEAREST_SERVICE_DOWN = "nearest_service_down"  # it has the service, but its fresh figure says not available now
NEAREST_FIGURES_STALE = "nearest_figures_stale"  # a figure the ranking reads (IGD beds, the service) is out of date

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
    """A destination: its code, name, location, the services it has and what it reports it can take now."""

    code: str
    name: str
    location: Point
    services: frozenset[str]
    availability: Availability = field(default_factory=Availability)

    def __post_init__(self) -> None:
        check_text(self.code, "code", max_len=64, allow_empty=False)
        check_text(self.name, "name", max_len=200, allow_empty=False)
        if not isinstance(self.location, Point):
            raise InvalidInput("location", "must be a Point")
        if not isinstance(self.services, frozenset):
            raise InvalidInput("services", "must be a frozenset")
        parse_services(sorted(self.services))
        if not isinstance(self.availability, Availability):
            raise InvalidInput("availability", "must be an Availability")
        for name in self.availability.services:
            if name not in self.services:
                raise InvalidInput(f"availability.services.{name}", "not a service of this hospital")


@dataclass(frozen=True, slots=True)
class RankedHospital:
    hospital: Hospital
    distance_m: float
    eta_s: float
    capable: bool  # has the needed service (always, when the call needs none)
    readiness: Readiness = Readiness.UNCONFIRMED  # what its figures say about taking the patient now
    igd: Freshness = Freshness.UNKNOWN  # of its free-IGD-bed figure
    service: Freshness = Freshness.UNKNOWN  # of its figure for the needed service (unknown when none is needed or it lacks it)


@dataclass(frozen=True, slots=True)
class HospitalWarning:
    """Something the operator must see before choosing: ``kind`` says what, about which hospital and service."""

    kind: str
    service: str | None  # the service the call needs (None: an IGD bed warning for a call that needs no service)
    hospital: str | None = None  # the hospital concerned, by code
    hospital_name: str | None = None
    # The first hospital in the ranking that has the service (a bed warning: that is ready now), by code.
    nearest_capable: str | None = None

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


# Stands in for ``now`` when no hospital reported anything: with no figures, no age is computed.
_NEVER_READ = datetime.fromtimestamp(0, UTC)
READINESS_ORDER = {Readiness.READY: 0, Readiness.UNCONFIRMED: 1, Readiness.NOT_READY: 2}


def rank_hospitals(
    scene: Point,
    hospitals: Iterable[Hospital],
    *,
    needed_service: str | None,
    eta: EtaFn,
    now: datetime | None = None,
    stale_after: timedelta = DEFAULT_STALE_AFTER,
) -> Ranking:
    """Capable hospitals first, then the others; in each, ready now before unconfirmed before not ready; then by ETA
    and code; with the warnings the operator needs. ``now`` judges the figures' age (needed when any are reported)."""
    service = parse_service(needed_service, "needed_service")
    ranked = []
    for hospital in hospitals:
        capable = service is None or service in hospital.services
        if hospital.availability.reported and now is None:
            raise InvalidInput("now", "is needed to judge the age of reported figures")
        figures = hospital.availability
        at = now if now is not None else _NEVER_READ
        ranked.append(
            RankedHospital(
                hospital=hospital,
                distance_m=distance_m(scene, hospital.location),
                eta_s=eta(scene, hospital.location),
                capable=capable,
                # An incapable hospital is judged on its IGD alone: the service it lacks is its group already.
                readiness=readiness(figures, service if capable else None, at, stale_after),
                igd=freshness(figures.beds.get("igd"), at, stale_after),
                service=freshness(figures.services.get(service), at, stale_after) if service else Freshness.UNKNOWN,
            )
        )
    ranked.sort(key=lambda r: (not r.capable, READINESS_ORDER[r.readiness], r.eta_s, r.hospital.code))
    return Ranking(service, tuple(ranked), _warnings(service, ranked))


def _warnings(service: str | None, ranked: list[RankedHospital]) -> tuple[HospitalWarning, ...]:
    if not ranked:
        return ()
    capable = [r for r in ranked if r.capable]
    if not capable:  # only when a service is needed: without one, every hospital is capable
        return (HospitalWarning(NO_HOSPITAL_HAS_SERVICE, service),)
    # The nearest by ETA, a capable one first among equals: the operator loses nothing by going there.
    nearest = min(ranked, key=lambda r: (r.eta_s, not r.capable, r.hospital.code))
    ready = next((r for r in capable if r.readiness is Readiness.READY), None)
    about = (nearest.hospital.code, nearest.hospital.name)
    warnings = [] if nearest.capable else [HospitalWarning(NEAREST_LACKS_SERVICE, service, *about, capable[0].hospital.code)]
    better = ready.hospital.code if ready is not None and ready is not nearest else None
    figures = nearest.hospital.availability
    igd = figures.beds.get("igd")
    if nearest.igd is Freshness.FRESH and igd is not None and igd.value == 0:
        warnings.append(HospitalWarning(NEAREST_NO_IGD_BED, service, *about, better))
    running = figures.services.get(service) if service is not None and nearest.capable else None
    if nearest.service is Freshness.FRESH and running is not None and running.value is False:
        warnings.append(HospitalWarning(NEAREST_SERVICE_DOWN, service, *about, better))
    if nearest.igd is Freshness.STALE or (nearest.capable and nearest.service is Freshness.STALE):
        warnings.append(HospitalWarning(NEAREST_FIGURES_STALE, service, *about, better))
    return tuple(warnings)
