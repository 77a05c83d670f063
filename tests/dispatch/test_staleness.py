"""dispatch.staleness: which point a unit is ranked from."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from dispatch.geo import Point
from dispatch.ids import UnitId
from dispatch.staleness import DEFAULT_MAX_FIX_AGE, is_stale, ranking_point
from dispatch.status import UnitStatus
from dispatch.units import Unit, UnitKind

T0 = datetime(2024, 5, 1, 8, 0, tzinfo=timezone(timedelta(hours=7)))
BASE = Point(-6.2886, 106.7179)
FIX = Point(-6.3000, 106.7000)


def unit(position: Point | None = None, at: datetime | None = None) -> Unit:
    return Unit(
        UnitId("AMB-1"),
        "Ambulans 1",
        UnitKind.AMBULANCE,
        frozenset({"bls", "transport"}),
        BASE,
        UnitStatus.AVAILABLE,
        position,
        at,
    )


def test_default_is_thirty_minutes() -> None:
    assert DEFAULT_MAX_FIX_AGE == timedelta(minutes=30)


def test_boundaries() -> None:
    age = timedelta(minutes=30)
    assert not is_stale(T0, T0 + age, age)  # exactly max_age old: still fresh
    assert is_stale(T0, T0 + age + timedelta(microseconds=1), age)
    assert not is_stale(T0 + timedelta(minutes=5), T0, age)  # a clock ahead: fresh
    assert is_stale(None, T0, age)


def test_ranking_point() -> None:
    no_fix = ranking_point(unit(), T0)
    assert no_fix.point == BASE and no_fix.no_fix and not no_fix.stale
    fresh = ranking_point(unit(FIX, T0), T0 + timedelta(minutes=10))
    assert fresh.point == FIX and not fresh.stale and not fresh.no_fix
    old = ranking_point(unit(FIX, T0), T0 + timedelta(minutes=31))
    assert old.point == BASE and old.stale and not old.no_fix
    custom = ranking_point(unit(FIX, T0), T0 + timedelta(minutes=10), timedelta(minutes=5))
    assert custom.point == BASE and custom.stale
