"""dispatch.recommend: the brute-force reference and road-ETA re-ranking."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from dispatch.errors import InvalidInput
from dispatch.eta import GeodesicEta
from dispatch.geo import Point, distance_m
from dispatch.ids import UnitId
from dispatch.recommend import Recommendation, brute_force_recommend, rerank_by_road_eta
from dispatch.status import UnitStatus
from dispatch.units import Unit, UnitKind

T0 = datetime(2024, 5, 1, 8, 0, tzinfo=timezone(timedelta(hours=7)))
ETA = GeodesicEta()
PATIENT = Point(-6.3000, 106.7000)


def unit(
    uid: str,
    lat: float,
    lon: float,
    kind: UnitKind = UnitKind.AMBULANCE,
    caps: frozenset[str] = frozenset({"bls", "transport"}),
    status: UnitStatus = UnitStatus.AVAILABLE,
    fix: Point | None = None,
    fix_age: timedelta = timedelta(minutes=1),
) -> Unit:
    return Unit(
        UnitId(uid),
        uid.upper(),
        kind,
        caps,
        Point(lat, lon),
        status,
        fix,
        None if fix is None else T0 - fix_age,
    )


def ids(recs: list[Recommendation]) -> list[str]:
    return [r.unit_id for r in recs]


def test_ranks_by_eta_not_distance() -> None:
    # The motorbike is a little farther but faster: it comes first.
    ambulance = unit("amb", -6.3050, 106.7000)
    bike = unit("mtr", -6.3060, 106.7000, UnitKind.MOTORBIKE, frozenset({"bls", "aed"}))
    recs = brute_force_recommend([ambulance, bike], PATIENT, 2, T0, eta=ETA)
    assert ids(recs) == ["mtr", "amb"]
    assert recs[0].distance_m > recs[1].distance_m
    assert recs[0].eta_s < recs[1].eta_s
    first = recs[0]
    assert first.distance_m == distance_m(Point(-6.3060, 106.7000), PATIENT)
    assert first.eta_s == ETA.eta_for_distance(first.distance_m, UnitKind.MOTORBIKE)
    assert first.kind is UnitKind.MOTORBIKE and first.callsign == "MTR"
    assert first.no_fix and not first.stale  # no fix at all: ranked from base, flagged apart from an old fix
    assert first.ranked_from == Point(-6.3060, 106.7000)


def test_filters() -> None:
    fleet = [
        unit("a", -6.301, 106.7),
        unit("b", -6.302, 106.7, status=UnitStatus.EN_ROUTE),
        unit("c", -6.303, 106.7, caps=frozenset({"bls", "transport", "als"})),
        unit("d", -6.3035, 106.7, UnitKind.MOTORBIKE, frozenset({"bls", "aed"})),
        unit("e", -6.305, 106.7, status=UnitStatus.OFF_DUTY),
    ]
    def top(k: int = 10, **kw: Any) -> list[str]:
        return ids(brute_force_recommend(fleet, PATIENT, k, T0, eta=ETA, **kw))

    assert top() == ["a", "d", "c"]  # "b" is en route, "e" off duty
    assert top(required_capabilities=frozenset({"als"})) == ["c"]
    assert top(kinds=frozenset({UnitKind.AMBULANCE})) == ["a", "c"]
    assert top(exclude=frozenset({UnitId("a")})) == ["d", "c"]
    assert top(kinds=frozenset()) == []
    assert top(k=1) == ["a"]


def test_stale_fix_is_replaced_by_base() -> None:
    near_fix = Point(-6.3001, 106.7)
    fresh = unit("fresh", -6.40, 106.7, fix=Point(-6.31, 106.7), fix_age=timedelta(minutes=29))
    stale = unit("stale", -6.35, 106.7, fix=near_fix, fix_age=timedelta(minutes=31))
    recs = brute_force_recommend([fresh, stale], PATIENT, 2, T0, eta=ETA)
    assert ids(recs) == ["fresh", "stale"]
    assert not recs[0].stale and recs[0].ranked_from == Point(-6.31, 106.7)
    assert recs[1].stale and recs[1].ranked_from == Point(-6.35, 106.7)
    # With a longer allowed age the near fix counts again.
    recs = brute_force_recommend([fresh, stale], PATIENT, 2, T0, eta=ETA, max_fix_age=timedelta(hours=1))
    assert ids(recs) == ["stale", "fresh"]


def test_ties_break_on_unit_id() -> None:
    fleet = [unit(uid, -6.31, 106.7) for uid in ("u3", "u1", "u2")]
    assert ids(brute_force_recommend(fleet, PATIENT, 2, T0, eta=ETA)) == ["u1", "u2"]


@pytest.mark.parametrize(
    ("k", "now", "field"),
    [(0, T0, "k"), (True, T0, "k"), (2.0, T0, "k"), (1, datetime(2024, 1, 1), "now")],
)
def test_query_validation(k: object, now: object, field: str) -> None:
    with pytest.raises(InvalidInput) as info:
        brute_force_recommend([], PATIENT, k, now, eta=ETA)  # type: ignore[arg-type]
    assert info.value.field == field


def test_rerank_by_road_eta() -> None:
    fleet = [unit("a", -6.301, 106.7), unit("b", -6.302, 106.7), unit("c", -6.303, 106.7)]
    shortlist = brute_force_recommend(fleet, PATIENT, 3, T0, eta=ETA)
    assert ids(shortlist) == ["a", "b", "c"]
    # The river between "a" and the patient makes its road trip long.
    reranked = rerank_by_road_eta(shortlist, {UnitId("a"): 900.0, UnitId("b"): 30.0}, k=2)
    assert ids(reranked) == ["b", "c"]
    assert reranked[0].road_eta_s == 30.0
    assert reranked[1].road_eta_s is None  # no road ETA: keeps its straight-line one
    assert reranked[1].eta_s == shortlist[2].eta_s
    with pytest.raises(InvalidInput) as info:
        rerank_by_road_eta(shortlist, {UnitId("a"): -1.0}, k=2)
    assert info.value.field == "road_eta_s.a"


def test_recommendation_to_dict() -> None:
    rec = brute_force_recommend([unit("a", -6.301, 106.7)], PATIENT, 1, T0, eta=ETA)[0]
    data = rec.to_dict()
    assert data["unit_id"] == "a" and data["kind"] == "ambulance" and data["stale"] is False and data["no_fix"] is True
    assert data["ranked_from"] == {"lat": -6.301, "lon": 106.7}
    assert data["road_eta_s"] is None
