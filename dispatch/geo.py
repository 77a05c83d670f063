"""Points on the WGS-84 ellipsoid and the geodesic distance between them."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from geographiclib.geodesic import Geodesic
from geopy.distance import ELLIPSOIDS, geodesic

from dispatch._checks import check_real
from dispatch.errors import InvalidInput

__all__ = ["Point", "distance_m", "ecef_m", "geodesic_m", "point_from_dict"]

# WGS-84, the ellipsoid geopy's geodesic uses by default.
_A = 6378137.0
_F = 1 / 298.257223563
_E2 = _F * (2 - _F)

# The solver geopy builds afresh for every distance (over half its cost), built once, on
# geopy's own WGS-84 constants: geopy works in kilometres and scales to metres.
_WGS84_KM = ELLIPSOIDS["WGS-84"]
_SOLVER = Geodesic(_WGS84_KM[0], _WGS84_KM[2])


@dataclass(frozen=True, slots=True)
class Point:
    """A latitude/longitude in decimal degrees (WGS-84)."""

    lat: float
    lon: float

    def __post_init__(self) -> None:
        lat = check_real(self.lat, "lat")
        lon = check_real(self.lon, "lon")
        if not -90.0 <= lat <= 90.0:
            raise InvalidInput("lat", "must be between -90 and 90")
        if not -180.0 <= lon <= 180.0:
            raise InvalidInput("lon", "must be between -180 and 180")
        # Store floats even when given ints, so equal points compare equal.
        object.__setattr__(self, "lat", lat)
        object.__setattr__(self, "lon", lon)

    def to_dict(self) -> dict[str, float]:
        return {"lat": self.lat, "lon": self.lon}


def point_from_dict(data: object, field: str = "location") -> Point:
    """Parse ``{"lat": ..., "lon": ...}``; errors name ``field.lat`` etc."""
    if not isinstance(data, Mapping):
        raise InvalidInput(field, "must be an object with lat and lon")
    unknown = set(data) - {"lat", "lon"}
    if unknown:
        raise InvalidInput(f"{field}.{sorted(map(str, unknown))[0]}", "unknown field")
    for key in ("lat", "lon"):
        if key not in data:
            raise InvalidInput(f"{field}.{key}", "is required")
    try:
        return Point(data["lat"], data["lon"])
    except InvalidInput as exc:
        raise exc.within(field) from None


def distance_m(a: Point, b: Point) -> float:
    """Geodesic distance in metres on WGS-84 (geopy, Karney's algorithm)."""
    return float(geodesic((a.lat, a.lon), (b.lat, b.lon)).meters)


def geodesic_m(a: Point, b: Point) -> float:
    """``distance_m`` to the bit (a property test holds it to that), in about half the time:
    geopy's own arithmetic on one prebuilt solver (``+ 0.0`` is geopy's sum of legs, turning -0.0 into 0.0).
    """
    s12 = _SOLVER.Inverse(a.lat, a.lon, b.lat, b.lon, Geodesic.DISTANCE)["s12"]
    return (float(s12) + 0.0) * 1000


def ecef_m(point: Point) -> tuple[float, float, float]:
    """Earth-centred Cartesian coordinates (metres) of ``point`` at height 0.

    The straight-line (chord) distance between two such points never
    exceeds the geodesic distance along the surface, which makes it a cheap
    and provably sound lower bound for pruning a nearest-unit search.
    """
    phi = math.radians(point.lat)
    lam = math.radians(point.lon)
    sin_phi = math.sin(phi)
    cos_phi = math.cos(phi)
    n = _A / math.sqrt(1.0 - _E2 * sin_phi * sin_phi)
    return (
        n * cos_phi * math.cos(lam),
        n * cos_phi * math.sin(lam),
        n * (1.0 - _E2) * sin_phi,
    )
