"""Estimated travel time of a unit to a patient.

The default model is straight-line: geodesic distance x a detour factor /
a speed per unit kind. It is a non-decreasing function of distance, which
is what lets the unit index prune by distance. A road-network provider
(OSRM, a commercial routing API) does I/O, so it does not replace the index:
it re-ranks the straight-line shortlist through ``ReRanker``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, NamedTuple, Protocol

from dispatch._checks import check_real
from dispatch.errors import InvalidInput
from dispatch.geo import Point, distance_m
from dispatch.units import UnitKind

if TYPE_CHECKING:
    from dispatch.recommend import Recommendation

__all__ = [
    "DEFAULT_DETOUR_FACTOR",
    "DEFAULT_SPEED_KMH",
    "DistanceEtaModel",
    "EtaModel",
    "GeodesicEta",
    "Leg",
    "ReRanker",
]

# Roads in Tangerang Selatan wind around rivers, housing estates and toll
# roads: a trip is typically ~1.4x the straight line.
DEFAULT_DETOUR_FACTOR = 1.4
# Average city speeds in traffic; a motorbike filters through jams.
DEFAULT_SPEED_KMH: Mapping[UnitKind, float] = MappingProxyType(
    {UnitKind.AMBULANCE: 30.0, UnitKind.MOTORBIKE: 40.0}
)


class Leg(NamedTuple):
    """A trip a road ETA is asked for: from, by a unit of this kind, to."""

    origin: Point
    kind: UnitKind
    dest: Point


class EtaModel(Protocol):
    """Anything that estimates seconds from ``origin`` to ``dest`` for a unit kind."""

    def eta_seconds(self, origin: Point, dest: Point, kind: UnitKind) -> float: ...


class DistanceEtaModel(EtaModel, Protocol):
    """An ETA that depends only on geodesic distance and kind.

    ``eta_for_distance`` must be non-decreasing in ``distance_m`` for each
    kind: the unit index turns a lower bound on distance into a lower bound
    on ETA with it.
    """

    def eta_for_distance(self, distance_m: float, kind: UnitKind) -> float: ...


class ReRanker(Protocol):
    """Re-orders a straight-line shortlist by a better (road-network) ETA and keeps the best ``k``.

    Implementations fetch road ETAs (I/O, in the server, e.g. ``server.road_eta``)
    and finish with ``dispatch.recommend.rerank_by_road_eta``.
    """

    async def rerank(self, dest: Point, shortlist: Sequence[Recommendation], k: int) -> list[Recommendation]: ...

    async def legs_s(self, legs: Sequence[Leg]) -> list[float | None]:
        """The road seconds of each leg for its unit kind, None where there is none."""
        ...


@dataclass(frozen=True, slots=True)
class GeodesicEta:
    """``geodesic distance x detour_factor / speed(kind)``, in seconds."""

    detour_factor: float = DEFAULT_DETOUR_FACTOR
    speed_kmh_by_kind: Mapping[UnitKind, float] = field(default_factory=lambda: DEFAULT_SPEED_KMH)
    # Metres per second, derived once so every ETA is computed the same way.
    _speed_ms: Mapping[UnitKind, float] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        detour = check_real(self.detour_factor, "detour_factor")
        # A road is never shorter than the geodesic: a factor below 1 is a mistake.
        if detour < 1.0:
            raise InvalidInput("detour_factor", "must be at least 1.0")
        if not isinstance(self.speed_kmh_by_kind, Mapping):
            raise InvalidInput("speed_kmh_by_kind", "must map unit kinds to km/h")
        speeds: dict[UnitKind, float] = {}
        for kind in UnitKind:
            where = f"speed_kmh_by_kind.{kind.value}"
            if kind not in self.speed_kmh_by_kind:
                raise InvalidInput(where, "is required")
            speed = check_real(self.speed_kmh_by_kind[kind], where)
            if speed <= 0:
                raise InvalidInput(where, "must be greater than 0")
            speeds[kind] = speed
        for key in self.speed_kmh_by_kind:
            if not isinstance(key, UnitKind):
                raise InvalidInput("speed_kmh_by_kind", f"unknown unit kind {key!r}")
        object.__setattr__(self, "detour_factor", detour)
        object.__setattr__(self, "speed_kmh_by_kind", MappingProxyType(speeds))
        object.__setattr__(
            self, "_speed_ms", MappingProxyType({k: v / 3.6 for k, v in speeds.items()})
        )

    def eta_for_distance(self, distance_m: float, kind: UnitKind) -> float:
        return distance_m * self.detour_factor / self._speed_ms[kind]

    def eta_seconds(self, origin: Point, dest: Point, kind: UnitKind) -> float:
        return self.eta_for_distance(distance_m(origin, dest), kind)
