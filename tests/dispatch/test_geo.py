"""dispatch.geo: points and geodesic distance."""

from __future__ import annotations

import math

import pytest
from geopy.distance import geodesic
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch.errors import InvalidInput
from dispatch.geo import Point, distance_m, ecef_m, geodesic_m, point_from_dict

# Two landmarks in Tangerang Selatan (approximate).
BSD = Point(-6.3019, 106.6522)
PAMULANG = Point(-6.3428, 106.7386)


def test_point_stores_floats() -> None:
    p = Point(-6, 106)
    assert p == Point(-6.0, 106.0)
    assert isinstance(p.lat, float) and isinstance(p.lon, float)


@pytest.mark.parametrize(
    ("lat", "lon", "field"),
    [
        (-90.0001, 0.0, "lat"),
        (90.5, 0.0, "lat"),
        (0.0, 180.0001, "lon"),
        (0.0, -181.0, "lon"),
        (math.nan, 0.0, "lat"),
        (0.0, math.inf, "lon"),
        ("6.3", 106.0, "lat"),
        (True, 106.0, "lat"),
        (-6.0, None, "lon"),
    ],
)
def test_point_rejects_bad_coordinates(lat: object, lon: object, field: str) -> None:
    with pytest.raises(InvalidInput) as info:
        Point(lat, lon)  # type: ignore[arg-type]
    assert info.value.field == field


def test_point_accepts_the_extremes() -> None:
    assert Point(90, 180).lat == 90.0
    assert Point(-90, -180).lon == -180.0


def test_point_from_dict_names_nested_field() -> None:
    assert point_from_dict({"lat": -6.3, "lon": 106.7}) == Point(-6.3, 106.7)
    with pytest.raises(InvalidInput) as info:
        point_from_dict({"lat": -6.3, "lon": 200}, "location")
    assert info.value.field == "location.lon"
    with pytest.raises(InvalidInput) as info:
        point_from_dict({"lat": -6.3}, "location")
    assert info.value.field == "location.lon"
    with pytest.raises(InvalidInput) as info:
        point_from_dict({"lat": -6.3, "lon": 106.0, "alt": 3}, "location")
    assert info.value.field == "location.alt"
    with pytest.raises(InvalidInput) as info:
        point_from_dict([-6.3, 106.7], "location")
    assert info.value.field == "location"


def test_distance_is_geopy_geodesic_in_metres() -> None:
    expected = geodesic((BSD.lat, BSD.lon), (PAMULANG.lat, PAMULANG.lon)).meters
    assert distance_m(BSD, PAMULANG) == expected
    # Roughly 10.5 km between the two, as a sanity check on units.
    assert 10_000 < distance_m(BSD, PAMULANG) < 11_000
    assert distance_m(BSD, BSD) == 0.0


def test_one_degree_of_latitude_at_the_equator() -> None:
    assert distance_m(Point(0, 0), Point(1, 0)) == pytest.approx(110_574.4, abs=1.0)


def test_chord_never_exceeds_geodesic() -> None:
    pairs = [
        (BSD, PAMULANG),
        (Point(0, 0), Point(0, 179.9)),
        (Point(89.9, 0), Point(89.9, 180)),
        (Point(-6.3, 106.7), Point(51.5, -0.1)),
        (Point(0, 0), Point(0, 0)),
    ]
    for a, b in pairs:
        chord = math.dist(ecef_m(a), ecef_m(b))
        assert chord <= distance_m(a, b) + 1e-6


def test_ecef_radius_matches_wgs84() -> None:
    x, y, z = ecef_m(Point(0, 0))
    assert (x, y, z) == pytest.approx((6_378_137.0, 0.0, 0.0))
    _, _, z_pole = ecef_m(Point(90, 0))
    assert z_pole == pytest.approx(6_356_752.314, abs=0.01)


# Everywhere, and where a geodesic solver has its hard cases: the poles, the antimeridian,
# signed zeros, coincident and nearly antipodal points.
_lat = st.one_of(st.floats(-90, 90), st.sampled_from([-90.0, -0.0, 0.0, 90.0]), st.floats(89.999, 90))
_lon = st.one_of(st.floats(-180, 180), st.sampled_from([-180.0, -0.0, 0.0, 180.0]), st.floats(179.999, 180))
_points = st.builds(Point, _lat, _lon)


@settings(max_examples=2000, deadline=None)
@given(a=_points, b=_points, antipodal=st.booleans(), nudge=st.floats(-1e-3, 1e-3))
def test_geodesic_m_is_geopy_to_the_bit(a: Point, b: Point, antipodal: bool, nudge: float) -> None:
    if antipodal:
        lon = a.lon + 180.0 if a.lon <= 0 else a.lon - 180.0
        b = Point(max(-90.0, min(90.0, -a.lat + nudge)), lon)
    expected = geodesic((a.lat, a.lon), (b.lat, b.lon)).meters
    assert geodesic_m(a, b).hex() == float(expected).hex()


def test_geodesic_m_on_landmarks() -> None:
    assert geodesic_m(BSD, PAMULANG) == distance_m(BSD, PAMULANG)
    assert geodesic_m(Point(-0.0, -0.0), Point(0.0, 0.0)).hex() == distance_m(Point(-0.0, -0.0), Point(0.0, 0.0)).hex()
    assert geodesic_m(Point(90, 0), Point(-90, 0)) == distance_m(Point(90, 0), Point(-90, 0))
