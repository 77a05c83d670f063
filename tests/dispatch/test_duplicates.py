"""dispatch.duplicates: duplicate-call warnings and repeat-prank flags."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from geopy.distance import geodesic

from dispatch.duplicates import (
    DuplicateReason,
    DuplicateRules,
    DuplicateWarning,
    OpenIncident,
    find_duplicates,
    prank_flag,
)
from dispatch.errors import InvalidInput
from dispatch.geo import Point, distance_m
from dispatch.ids import IncidentId

T0 = datetime(2024, 5, 1, 8, 0, tzinfo=timezone(timedelta(hours=7)))
CRASH = Point(-6.2900, 106.7100)


def offset(point: Point, metres: float, bearing: float = 90.0) -> Point:
    spot = geodesic(meters=metres).destination((point.lat, point.lon), bearing=bearing)
    return Point(spot.latitude, spot.longitude)


def open_incident(
    iid: str, minutes_ago: float, phone: str = "081200000000", location: Point | None = CRASH
) -> OpenIncident:
    return OpenIncident(IncidentId(iid), T0 - timedelta(minutes=minutes_ago), phone, location)


def test_nearby_recent_incident_is_flagged() -> None:
    near = offset(CRASH, 250)
    warnings = find_duplicates("081299999999", near, T0, [open_incident("inc-1", 5)])
    assert warnings == [DuplicateWarning(IncidentId("inc-1"), DuplicateReason.NEARBY, distance_m(near, CRASH))]
    assert warnings[0].distance_m == pytest.approx(250, abs=0.01)
    assert warnings[0].to_dict()["reason"] == "nearby"


def test_radius_and_window_boundaries() -> None:
    assert find_duplicates("081299999999", offset(CRASH, 301), T0, [open_incident("inc-1", 5)]) == []
    assert find_duplicates("081299999999", offset(CRASH, 299), T0, [open_incident("inc-1", 21)]) == []
    assert len(find_duplicates("081299999999", offset(CRASH, 299), T0, [open_incident("inc-1", 20)])) == 1
    # A slightly later incident (another operator, seconds apart) counts too.
    assert len(find_duplicates("081299999999", CRASH, T0, [open_incident("inc-1", -0.5)])) == 1


def test_same_caller_is_flagged_even_without_a_location() -> None:
    incidents = [open_incident("inc-1", 45, phone="+62 812 1111 2222", location=None)]
    warnings = find_duplicates("0812-1111-2222", None, T0, incidents)
    assert warnings == [DuplicateWarning(IncidentId("inc-1"), DuplicateReason.SAME_CALLER, None)]
    assert find_duplicates("0812-1111-2222", None, T0 + timedelta(minutes=20), incidents) == []


def test_same_caller_soon_after_closing_is_flagged_closed() -> None:
    # Received two hours ago, closed a second ago: the caller window runs from the closing.
    closed = OpenIncident(IncidentId("inc-closed"), T0 - timedelta(hours=2), "081244445555", CRASH,
                          closed_at=T0 - timedelta(seconds=1))
    warnings = find_duplicates("081244445555", offset(CRASH, 40), T0, [closed])
    assert [(w.incident_id, w.reason.value) for w in warnings] == [("inc-closed", "same_caller_closed")]
    # A closed incident is never a "nearby" duplicate, and another number is not flagged.
    assert find_duplicates("081299999999", CRASH, T0, [closed]) == []
    assert find_duplicates("081244445555", CRASH, T0 + timedelta(hours=1, seconds=1), [closed]) == []


def test_both_reasons_and_ordering() -> None:
    incidents = [
        open_incident("inc-far", 2, location=offset(CRASH, 200)),
        open_incident("inc-near", 2, location=offset(CRASH, 50)),
        open_incident("inc-same", 2, phone="081233334444", location=offset(CRASH, 120)),
        open_incident("inc-nowhere", 2, phone="081233334444", location=None),
        open_incident("inc-elsewhere", 2, location=offset(CRASH, 5000)),
    ]
    warnings = find_duplicates("081233334444", CRASH, T0, incidents)
    assert [(w.incident_id, w.reason.value) for w in warnings] == [
        ("inc-near", "nearby"),
        ("inc-same", "nearby"),
        ("inc-same", "same_caller"),
        ("inc-far", "nearby"),
        ("inc-nowhere", "same_caller"),
    ]


def test_custom_rules() -> None:
    rules = DuplicateRules(radius_m=1000, window=timedelta(minutes=60))
    warnings = find_duplicates("081299999999", offset(CRASH, 900), T0, [open_incident("inc-1", 50)], rules)
    assert len(warnings) == 1


def test_prank_flag_counts_within_the_window() -> None:
    times = [T0 - timedelta(days=40), T0 - timedelta(days=10)]
    assert prank_flag("081255556666", times, T0) is None
    times.append(T0 - timedelta(days=1))
    flag = prank_flag("+62 812 5555 6666", times, T0)
    assert flag is not None
    assert flag.phone == "081255556666"
    assert flag.prank_count == 2 and flag.threshold == 2
    assert flag.since == T0 - timedelta(days=30)
    strict = DuplicateRules(prank_threshold=3)
    assert prank_flag("081255556666", times, T0, strict) is None


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"radius_m": 0}, "radius_m"),
        ({"window": timedelta(0)}, "window"),
        ({"caller_window": 5}, "caller_window"),
        ({"prank_threshold": 0}, "prank_threshold"),
        ({"prank_window": timedelta(days=-1)}, "prank_window"),
    ],
)
def test_rules_validation(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as info:
        DuplicateRules(**kwargs)  # type: ignore[arg-type]
    assert info.value.field == field


def test_input_validation() -> None:
    with pytest.raises(InvalidInput) as info:
        find_duplicates("x", CRASH, T0, [])
    assert info.value.field == "phone"
    with pytest.raises(InvalidInput) as info:
        OpenIncident(IncidentId("inc-1"), T0, "not a phone")
    assert info.value.field == "caller_phone"
    with pytest.raises(InvalidInput) as info:
        prank_flag("081255556666", [datetime(2024, 5, 1)], T0)
    assert info.value.field == "prank_call_times"
