"""What a recommendation is, which units qualify, and the brute-force reference.

``brute_force_recommend`` is the plain scan: rank every eligible unit by
exact geodesic ETA. ``UnitIndex.recommend`` must return exactly the same
list; the property tests hold it to that.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from dispatch._checks import check_aware, check_int, check_real
from dispatch.doctrine import TRANSPORT, Needs
from dispatch.errors import InvalidInput
from dispatch.eta import DistanceEtaModel
from dispatch.geo import Point, distance_m
from dispatch.ids import UnitId
from dispatch.staleness import DEFAULT_MAX_FIX_AGE, ranking_point
from dispatch.status import UnitStatus
from dispatch.units import Unit, UnitKind

__all__ = [
    "Recommendation",
    "Tiers",
    "UnitFilter",
    "brute_force_recommend",
    "brute_force_tiers",
    "check_query",
    "rank_unit",
    "rerank_by_road_eta",
    "tier_filters",
]


@dataclass(frozen=True, slots=True)
class Recommendation:
    """One proposed unit, best first in a list.

    ``ranked_from`` is the point the ETA was computed from: the live fix, or
    the base when the fix is ``stale`` (too old) or there is ``no_fix`` at all.
    ``road_eta_s`` is set only after re-ranking.
    """

    unit_id: UnitId
    callsign: str
    kind: UnitKind
    distance_m: float
    eta_s: float
    stale: bool
    ranked_from: Point
    no_fix: bool = False
    capabilities: frozenset[str] = frozenset()
    road_eta_s: float | None = None

    @property
    def sort_key(self) -> tuple[float, str]:
        """Best first: lower ETA, then unit id, so equal ETAs order the same way every time."""
        return (self.eta_s, self.unit_id)

    def to_dict(self) -> dict[str, object]:
        return {
            "unit_id": self.unit_id,
            "callsign": self.callsign,
            "kind": self.kind.value,
            "distance_m": self.distance_m,
            "eta_s": self.eta_s,
            "stale": self.stale,
            "no_fix": self.no_fix,
            "capabilities": sorted(self.capabilities),
            "ranked_from": self.ranked_from.to_dict(),
            "road_eta_s": self.road_eta_s,
        }


@dataclass(frozen=True, slots=True)
class UnitFilter:
    """Which units a query may return (besides being available)."""

    required_capabilities: frozenset[str] = frozenset()
    kinds: frozenset[UnitKind] | None = None  # None: every kind
    exclude: frozenset[UnitId] = frozenset()  # e.g. units that did not acknowledge

    def __post_init__(self) -> None:
        for name in ("required_capabilities", "exclude"):
            if not isinstance(getattr(self, name), frozenset):
                raise InvalidInput(name, "must be a frozenset")
        if self.kinds is not None and not isinstance(self.kinds, frozenset):
            raise InvalidInput("kinds", "must be a frozenset or None")

    def accepts(self, unit: Unit) -> bool:
        return (
            unit.status is UnitStatus.AVAILABLE
            and self.admits(unit.kind, unit.capabilities)
            and unit.id not in self.exclude
        )

    def admits(self, kind: UnitKind, capabilities: frozenset[str]) -> bool:
        """Whether units of this kind with these capabilities qualify (status and exclusions aside)."""
        return self.required_capabilities <= capabilities and (self.kinds is None or kind in self.kinds)


def check_query(point: object, k: object, now: object) -> None:
    """Validate the common query arguments (shared by the index and the scan)."""
    if not isinstance(point, Point):
        raise InvalidInput("point", "must be a Point")
    check_int(k, "k", minimum=1)
    check_aware(now, "now")


def rank_unit(
    unit: Unit,
    point: Point,
    now: datetime,
    eta: DistanceEtaModel,
    max_fix_age: timedelta,
    distance: Callable[[Point, Point], float] | None = None,
) -> Recommendation:
    """The recommendation for one unit. Index and scan both call this, so they agree bit for bit.

    The scan measures with geopy (``distance_m``, the default); the index passes ``geodesic_m``,
    the same bits in less time.
    """
    where = ranking_point(unit, now, max_fix_age)
    metres = (distance or distance_m)(where.point, point)
    return Recommendation(
        unit_id=unit.id,
        callsign=unit.callsign,
        kind=unit.kind,
        distance_m=metres,
        eta_s=eta.eta_for_distance(metres, unit.kind),
        stale=where.stale,
        ranked_from=where.point,
        no_fix=where.no_fix,
        capabilities=unit.capabilities,
    )


def brute_force_recommend(
    units: Iterable[Unit],
    point: Point,
    k: int,
    now: datetime,
    *,
    eta: DistanceEtaModel,
    max_fix_age: timedelta = DEFAULT_MAX_FIX_AGE,
    required_capabilities: frozenset[str] = frozenset(),
    kinds: frozenset[UnitKind] | None = None,
    exclude: frozenset[UnitId] = frozenset(),
) -> list[Recommendation]:
    """The top ``k`` available, capable units by ETA, found by ranking every unit."""
    check_query(point, k, now)
    wanted = UnitFilter(required_capabilities, kinds, exclude)
    ranked = [rank_unit(u, point, now, eta, max_fix_age) for u in units if wanted.accepts(u)]
    ranked.sort(key=lambda r: r.sort_key)
    return ranked[:k]


@dataclass(frozen=True, slots=True)
class Tiers:
    """A call's answer: the fastest units that can start care, and the fastest that can carry
    (empty when the call needs no transport). A unit that can do both is in both."""

    first_response: list[Recommendation]
    transport: list[Recommendation]


def tier_filters(needs: Needs, exclude: frozenset[UnitId]) -> tuple[UnitFilter, UnitFilter | None]:
    """The filters of the two tiers (None: the call needs no transport); index and scan share them."""
    if not isinstance(needs, Needs):
        raise InvalidInput("needs", "must be Needs")
    carry = UnitFilter(frozenset({TRANSPORT}), exclude=exclude) if needs.transport else None
    return UnitFilter(needs.care, exclude=exclude), carry


def brute_force_tiers(
    units: Iterable[Unit],
    point: Point,
    k: int,
    now: datetime,
    needs: Needs,
    *,
    eta: DistanceEtaModel,
    max_fix_age: timedelta = DEFAULT_MAX_FIX_AGE,
    exclude: frozenset[UnitId] = frozenset(),
) -> Tiers:
    """Both tiers by ranking every unit: the reference ``UnitIndex.recommend_tiers`` must equal."""
    fleet = list(units)
    care, carry = tier_filters(needs, exclude)

    def scan(wanted: UnitFilter) -> list[Recommendation]:
        return brute_force_recommend(fleet, point, k, now, eta=eta, max_fix_age=max_fix_age,
                                     required_capabilities=wanted.required_capabilities, exclude=wanted.exclude)

    return Tiers(scan(care), scan(carry) if carry is not None else [])


def rerank_by_road_eta(
    shortlist: Sequence[Recommendation],
    road_eta_s: Mapping[UnitId, float],
    k: int,
) -> list[Recommendation]:
    """Re-order a straight-line shortlist by road ETAs and keep the best ``k``.

    A unit the provider gave no ETA for keeps its straight-line estimate
    (``road_eta_s`` stays None), so a routing outage never hides a unit.
    Ties go to the unit id, as in the straight-line ranking.
    """
    check_int(k, "k", minimum=1)
    rescored: list[tuple[float, str, Recommendation]] = []
    for rec in shortlist:
        if rec.unit_id in road_eta_s:
            seconds = check_real(road_eta_s[rec.unit_id], f"road_eta_s.{rec.unit_id}")
            if seconds < 0:
                raise InvalidInput(f"road_eta_s.{rec.unit_id}", "must not be negative")
            rec = replace(rec, road_eta_s=seconds)
            rescored.append((seconds, rec.unit_id, rec))
        else:
            rescored.append((rec.eta_s, rec.unit_id, rec))
    rescored.sort(key=lambda item: (item[0], item[1]))
    return [rec for _, _, rec in rescored[:k]]
