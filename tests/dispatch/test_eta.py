"""dispatch.eta: the straight-line ETA model."""

from __future__ import annotations

import pytest

from dispatch.errors import InvalidInput
from dispatch.eta import DEFAULT_SPEED_KMH, GeodesicEta
from dispatch.geo import Point, distance_m
from dispatch.units import UnitKind

CIPUTAT = Point(-6.2886, 106.7179)
SERPONG = Point(-6.3160, 106.6636)


def test_defaults() -> None:
    eta = GeodesicEta()
    assert eta.detour_factor == 1.4
    assert dict(eta.speed_kmh_by_kind) == {UnitKind.AMBULANCE: 30.0, UnitKind.MOTORBIKE: 40.0}
    assert DEFAULT_SPEED_KMH[UnitKind.MOTORBIKE] > DEFAULT_SPEED_KMH[UnitKind.AMBULANCE]


def test_value_is_distance_times_detour_over_speed() -> None:
    eta = GeodesicEta()
    metres = distance_m(CIPUTAT, SERPONG)
    assert eta.eta_seconds(CIPUTAT, SERPONG, UnitKind.AMBULANCE) == pytest.approx(
        metres * 1.4 / (30_000 / 3600), rel=1e-12
    )
    assert eta.eta_seconds(CIPUTAT, SERPONG, UnitKind.MOTORBIKE) == pytest.approx(
        metres * 1.4 / (40_000 / 3600), rel=1e-12
    )
    # 10 km at 30 km/h with a 1.4 detour is 28 minutes.
    assert eta.eta_for_distance(10_000, UnitKind.AMBULANCE) == pytest.approx(1680.0)


def test_motorbike_beats_ambulance_on_the_same_route() -> None:
    eta = GeodesicEta()
    bike = eta.eta_seconds(CIPUTAT, SERPONG, UnitKind.MOTORBIKE)
    ambulance = eta.eta_seconds(CIPUTAT, SERPONG, UnitKind.AMBULANCE)
    assert bike < ambulance
    assert ambulance / bike == pytest.approx(40 / 30)


def test_configurable() -> None:
    eta = GeodesicEta(detour_factor=1.0, speed_kmh_by_kind={UnitKind.AMBULANCE: 36, UnitKind.MOTORBIKE: 72})
    assert eta.eta_for_distance(1000, UnitKind.AMBULANCE) == pytest.approx(100.0)
    assert eta.eta_for_distance(1000, UnitKind.MOTORBIKE) == pytest.approx(50.0)
    assert eta.eta_seconds(CIPUTAT, CIPUTAT, UnitKind.MOTORBIKE) == 0.0


def test_monotone_in_distance() -> None:
    eta = GeodesicEta()
    previous = -1.0
    for metres in (0.0, 0.1, 1.0, 10.0, 999.9, 1000.0, 1e6):
        value = eta.eta_for_distance(metres, UnitKind.AMBULANCE)
        assert value >= previous
        previous = value


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"detour_factor": 0.9}, "detour_factor"),
        ({"detour_factor": float("nan")}, "detour_factor"),
        ({"speed_kmh_by_kind": {UnitKind.AMBULANCE: 30.0}}, "speed_kmh_by_kind.motorbike"),
        (
            {"speed_kmh_by_kind": {UnitKind.AMBULANCE: 0, UnitKind.MOTORBIKE: 40}},
            "speed_kmh_by_kind.ambulance",
        ),
        (
            {"speed_kmh_by_kind": {UnitKind.AMBULANCE: 30, UnitKind.MOTORBIKE: "fast"}},
            "speed_kmh_by_kind.motorbike",
        ),
        (
            {"speed_kmh_by_kind": {UnitKind.AMBULANCE: 30, UnitKind.MOTORBIKE: 40, "boat": 10}},
            "speed_kmh_by_kind",
        ),
    ],
)
def test_validation(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as info:
        GeodesicEta(**kwargs)  # type: ignore[arg-type]
    assert info.value.field == field


def test_speeds_are_copied() -> None:
    speeds = {UnitKind.AMBULANCE: 30.0, UnitKind.MOTORBIKE: 40.0}
    eta = GeodesicEta(speed_kmh_by_kind=speeds)
    speeds[UnitKind.AMBULANCE] = 1.0
    assert eta.eta_for_distance(1000, UnitKind.AMBULANCE) == pytest.approx(168.0)
