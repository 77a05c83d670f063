"""dispatch.index: the live unit index, held to equal the brute-force scan."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest
from geopy.distance import geodesic
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dispatch.geo
import dispatch.index
import dispatch.recommend
from dispatch.errors import InvalidInput, UnknownUnit
from dispatch.eta import GeodesicEta
from dispatch.geo import Point
from dispatch.ids import UnitId
from dispatch.index import UnitIndex
from dispatch.recommend import brute_force_recommend
from dispatch.status import UnitStatus
from dispatch.units import Unit, UnitKind

T0 = datetime(2024, 5, 1, 8, 0, tzinfo=timezone(timedelta(hours=7)))
ETA = GeodesicEta()
PATIENT = Point(-6.3000, 106.7000)


def unit(
    uid: str,
    base: Point,
    kind: UnitKind = UnitKind.AMBULANCE,
    caps: frozenset[str] = frozenset({"bls", "transport"}),
    status: UnitStatus = UnitStatus.AVAILABLE,
    fix: Point | None = None,
    fix_time: datetime | None = None,
) -> Unit:
    return Unit(UnitId(uid), uid.upper(), kind, caps, base, status, fix, fix_time)


def destination(metres: float, bearing: float) -> Point:
    """The point ``metres`` from the patient along ``bearing`` degrees."""
    spot = geodesic(meters=metres).destination((PATIENT.lat, PATIENT.lon), bearing=bearing)
    return Point(spot.latitude, spot.longitude)


def both(
    index: UnitIndex,
    units: list[Unit],
    point: Point,
    k: int,
    now: datetime,
    required_capabilities: frozenset[str] = frozenset(),
    kinds: frozenset[UnitKind] | None = None,
    exclude: frozenset[UnitId] = frozenset(),
) -> list[str]:
    """The index's answer, after checking it equals the brute-force scan's."""
    got = index.recommend(point, k, now, required_capabilities, kinds, exclude)
    want = brute_force_recommend(
        units,
        point,
        k,
        now,
        eta=index.eta,
        max_fix_age=index.max_fix_age,
        required_capabilities=required_capabilities,
        kinds=kinds,
        exclude=exclude,
    )
    assert got == want
    return [r.unit_id for r in got]


# -- maintenance ---------------------------------------------------------------


def test_upsert_get_remove() -> None:
    index = UnitIndex()
    a = unit("a", Point(-6.31, 106.7))
    index.upsert(a)
    assert index.get(UnitId("a")) == a
    assert UnitId("a") in index and len(index) == 1
    assert index.units() == [a]
    assert index.remove(UnitId("a")) is True
    assert index.remove(UnitId("a")) is False
    assert UnitId("a") not in index
    with pytest.raises(UnknownUnit) as info:
        index.get(UnitId("a"))
    assert str(info.value) == "unknown unit 'a'"
    with pytest.raises(UnknownUnit):
        index.move(UnitId("a"), PATIENT, T0)
    with pytest.raises(UnknownUnit):
        index.set_status(UnitId("a"), UnitStatus.AVAILABLE)
    assert index.recommend(PATIENT, 3, T0) == []


def test_refresh_takes_the_record_but_keeps_a_newer_fix() -> None:
    index = UnitIndex()
    base = Point(-6.31, 106.7)
    index.upsert(unit("a", base, fix=Point(-6.35, 106.7), fix_time=T0))
    index.move(UnitId("a"), PATIENT, T0 + timedelta(seconds=5))
    # A record read before that fix: its status is newer news, its position is not.
    index.refresh(unit("a", base, status=UnitStatus.UNAVAILABLE, fix=Point(-6.35, 106.7), fix_time=T0))
    got = index.get(UnitId("a"))
    assert got.status is UnitStatus.UNAVAILABLE
    assert (got.position, got.position_time) == (PATIENT, T0 + timedelta(seconds=5))
    # A record with a newer (or first) fix replaces the position.
    later = Point(-6.28, 106.7)
    index.refresh(unit("a", base, fix=later, fix_time=T0 + timedelta(seconds=9)))
    assert index.get(UnitId("a")).position == later
    index.refresh(unit("b", base))
    assert index.get(UnitId("b")).position is None
    with pytest.raises(InvalidInput):
        index.refresh("a")  # type: ignore[arg-type]


def test_status_takes_units_in_and_out_of_recommendations() -> None:
    index = UnitIndex()
    index.upsert(unit("a", Point(-6.31, 106.7)))
    index.upsert(unit("b", Point(-6.32, 106.7)))
    assert [r.unit_id for r in index.recommend(PATIENT, 5, T0)] == ["a", "b"]
    updated = index.set_status(UnitId("a"), UnitStatus.DISPATCHED)
    assert updated.status is UnitStatus.DISPATCHED
    assert [r.unit_id for r in index.recommend(PATIENT, 5, T0)] == ["b"]
    index.set_status(UnitId("a"), UnitStatus.AVAILABLE)
    assert [r.unit_id for r in index.recommend(PATIENT, 5, T0)] == ["a", "b"]


def test_move_keeps_the_newest_fix() -> None:
    index = UnitIndex()
    index.upsert(unit("a", Point(-6.40, 106.7)))
    assert index.move(UnitId("a"), Point(-6.30, 106.7), T0) is True
    assert index.move(UnitId("a"), Point(-6.20, 106.7), T0 - timedelta(seconds=5)) is False
    assert index.get(UnitId("a")).position == Point(-6.30, 106.7)
    assert index.move(UnitId("a"), Point(-6.301, 106.7), T0) is True  # same time: accepted
    rec = index.recommend(PATIENT, 1, T0 + timedelta(minutes=1))[0]
    assert rec.ranked_from == Point(-6.301, 106.7) and not rec.stale
    with pytest.raises(InvalidInput) as info:
        index.move(UnitId("a"), PATIENT, datetime(2024, 5, 1))
    assert info.value.field == "at"


def test_staleness_depends_on_query_time() -> None:
    # The fix is next to the patient, the base far away: the answer changes
    # as the fix ages, with no update to the index in between.
    index = UnitIndex()
    units = [
        unit("a", Point(-6.40, 106.7), fix=Point(-6.3001, 106.7), fix_time=T0),
        unit("b", Point(-6.33, 106.7)),
    ]
    for u in units:
        index.upsert(u)
    assert both(index, units, PATIENT, 2, T0 + timedelta(minutes=30)) == ["a", "b"]
    assert both(index, units, PATIENT, 2, T0 + timedelta(minutes=31)) == ["b", "a"]
    late = index.recommend(PATIENT, 2, T0 + timedelta(minutes=31))
    assert late[1].stale and late[1].ranked_from == Point(-6.40, 106.7)
    # Queries need not come in time order.
    assert both(index, units, PATIENT, 2, T0) == ["a", "b"]


def test_filters_and_exclusions() -> None:
    index = UnitIndex()
    units = [
        unit("amb-als", Point(-6.305, 106.7), caps=frozenset({"bls", "als", "transport"})),
        unit("amb", Point(-6.301, 106.7)),
        unit("mtr", Point(-6.302, 106.7), UnitKind.MOTORBIKE, frozenset({"bls", "aed"})),
    ]
    for u in units:
        index.upsert(u)
    assert both(index, units, PATIENT, 5, T0, required_capabilities=frozenset({"als"})) == ["amb-als"]
    assert both(index, units, PATIENT, 5, T0, kinds=frozenset({UnitKind.MOTORBIKE})) == ["mtr"]
    assert both(index, units, PATIENT, 5, T0, exclude=frozenset({UnitId("amb")})) == ["mtr", "amb-als"]
    assert both(index, units, PATIENT, 5, T0, required_capabilities=frozenset({"rescue"})) == []
    assert index.recommend(PATIENT, 5, T0, kinds=frozenset()) == []


def test_fix_exactly_max_fix_age_old_is_still_fresh() -> None:
    """The index decides staleness in whole microseconds, and must agree with ``is_stale`` at the boundary:
    it searches from the place a unit is ranked from, so a wrong side of it hides the nearest unit."""
    index = UnitIndex(max_fix_age=timedelta(minutes=30))
    units = [
        # Near the patient while its fix is fresh, 11 km away from its base after.
        unit("a", Point(-6.40, 106.7), fix=Point(-6.3001, 106.7), fix_time=T0),
        # The other way round.
        unit("c", Point(-6.3002, 106.7), fix=Point(-6.45, 106.7), fix_time=T0),
        unit("b", Point(-6.33, 106.7)),
    ]
    for u in units:
        index.upsert(u)
    assert both(index, units, PATIENT, 1, T0 + timedelta(minutes=30)) == ["a"]
    assert both(index, units, PATIENT, 1, T0 + timedelta(minutes=30, microseconds=1)) == ["c"]
    # A fix stamped after the query time (a phone clock running ahead) is fresh.
    assert both(index, units, PATIENT, 1, T0 - timedelta(microseconds=1)) == ["a"]


def test_only_admitted_kinds_bound_the_search() -> None:
    """The search stops on the speed of the fastest kind the query admits, so an admitted motorbike farther
    out than the nearest ambulance, but sooner there, must still be found."""
    index = UnitIndex(cell_size_m=100)
    als = frozenset({"bls", "als"})
    units = [unit("amb", destination(1000.0, 0.0), caps=als | {"transport"})]
    # Sooner than the ambulance (40 against 30 km/h), at bearings spread over the cubes around the patient.
    units += [
        unit(f"mtr-{bearing}", destination(1250.0, bearing), UnitKind.MOTORBIKE, als)
        for bearing in range(10, 360, 20)
    ]
    # A motorbike without "als" next to the patient: the query does not admit it.
    units.append(unit("mtr-bls", destination(50.0, 90.0), UnitKind.MOTORBIKE, frozenset({"bls"})))
    for u in units:
        index.upsert(u)
    [first] = both(index, units, PATIENT, 1, T0, required_capabilities=frozenset({"als"}))
    assert first.startswith("mtr-") and first != "mtr-bls"
    assert both(index, units, PATIENT, 3, T0, required_capabilities=frozenset({"als", "transport"})) == ["amb"]


def test_units_sharing_a_cube_and_a_fix_time_stay_apart() -> None:
    """A cube's places are sorted by fix time; moving or removing one unit must not touch its neighbours."""
    index = UnitIndex()
    units = {
        f"u{i}": unit(f"u{i}", Point(-6.3 - i * 0.0001, 106.7), fix=Point(-6.3, 106.7 + i * 0.0001), fix_time=T0)
        for i in range(8)
    }
    for u in units.values():
        index.upsert(u)
    for step, uid in enumerate(["u3", "u5", "u3", "u0"]):
        spot = Point(-6.3, 106.7001 + step * 0.00001)
        assert index.move(UnitId(uid), spot, T0) is True
        units[uid] = units[uid].moved(spot, T0)
        both(index, list(units.values()), PATIENT, 8, T0)
        both(index, list(units.values()), PATIENT, 8, T0 + timedelta(hours=1))
    index.set_status(UnitId("u5"), UnitStatus.EN_ROUTE)
    assert index.remove(UnitId("u3")) is True
    del units["u3"]
    units["u5"] = units["u5"].with_status(UnitStatus.EN_ROUTE)
    assert "u5" not in both(index, list(units.values()), PATIENT, 8, T0)
    assert "u5" not in both(index, list(units.values()), PATIENT, 8, T0 + timedelta(hours=1))


def test_far_away_poles_and_antimeridian() -> None:
    index = UnitIndex(cell_size_m=500)
    units = [
        unit("tangsel", Point(-6.3, 106.7)),
        unit("north-pole", Point(89.9999, 10.0)),
        unit("south-pole", Point(-90.0, 0.0)),
        unit("fiji-east", Point(-17.7, 179.999)),
        unit("fiji-west", Point(-17.7, -179.999)),
        unit("london", Point(51.5, -0.12)),
    ]
    for u in units:
        index.upsert(u)
    targets = [Point(90, 0), Point(-89.99, 120), Point(-17.7, 180.0), Point(-17.7, -180.0), Point(0, 0), PATIENT]
    for point in targets:
        for k in (1, 3, 6):
            both(index, units, point, k, T0)
    assert both(index, units, Point(-17.7, 180.0), 2, T0) == ["fiji-east", "fiji-west"]


def test_equal_etas_break_on_unit_id() -> None:
    index = UnitIndex()
    units = [unit(uid, Point(-6.31, 106.7)) for uid in ("c", "a", "b", "d")]
    for u in units:
        index.upsert(u)
    assert both(index, units, PATIENT, 2, T0) == ["a", "b"]
    assert both(index, units, PATIENT, 3, T0) == ["a", "b", "c"]


@pytest.mark.parametrize("cell_size_m", [7.0, 20.0, 150.0])
def test_units_on_a_circle(cell_size_m: float) -> None:
    """Equidistant units spread over many rings: stopping one ring early loses ties."""
    rng = random.Random(11)
    index = UnitIndex(cell_size_m=cell_size_m)
    units = []
    for i in range(120):
        spot = geodesic(meters=1000.0).destination((PATIENT.lat, PATIENT.lon), bearing=rng.uniform(0, 360))
        # Ids in random order relative to bearing, so ties are decided by id.
        uid = f"c{rng.randrange(10**6):06d}-{i}"
        units.append(unit(uid, Point(spot.latitude, spot.longitude), UnitKind.MOTORBIKE, frozenset({"bls"})))
    for u in units:
        index.upsert(u)
    for k in (1, 7, 30):
        both(index, units, PATIENT, k, T0)


def test_query_validation() -> None:
    index = UnitIndex()
    with pytest.raises(InvalidInput) as info:
        index.recommend(PATIENT, 0, T0)
    assert info.value.field == "k"
    with pytest.raises(InvalidInput) as info:
        index.recommend(PATIENT, 1, datetime(2024, 5, 1))
    assert info.value.field == "now"
    with pytest.raises(InvalidInput) as info:
        UnitIndex(cell_size_m=0)
    assert info.value.field == "cell_size_m"
    with pytest.raises(InvalidInput) as info:
        UnitIndex(max_fix_age=timedelta(0))
    assert info.value.field == "max_fix_age"


def test_prunes_geodesic_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Over 2,000 units the index computes a few geodesics, not 2,000."""
    rng = random.Random(7)
    index = UnitIndex()
    for i in range(2000):
        index.upsert(unit(f"u{i:04d}", Point(rng.uniform(-6.40, -6.20), rng.uniform(106.60, 106.80))))
    calls = 0

    def counting(real: Callable[[Point, Point], float]) -> Callable[[Point, Point], float]:
        def counted(a: Point, b: Point) -> float:
            nonlocal calls
            calls += 1
            return real(a, b)

        return counted

    # The index measures with geodesic_m, the scan with geopy's distance_m: count both.
    monkeypatch.setattr(dispatch.index, "geodesic_m", counting(dispatch.geo.geodesic_m))
    monkeypatch.setattr(dispatch.recommend, "distance_m", counting(dispatch.geo.distance_m))
    index.recommend(PATIENT, 5, T0)
    assert 5 <= calls <= 60
    calls = 0
    brute_force_recommend(index.units(), PATIENT, 5, T0, eta=ETA)
    assert calls == 2000


# -- the property: index == brute force ---------------------------------------

SHARED = [Point(-6.30, 106.70), Point(-6.35, 106.65), Point(89.999, 0.0)]

tangsel = st.builds(
    Point,
    st.floats(-6.40, -6.20, allow_nan=False),
    st.floats(106.60, 106.80, allow_nan=False),
)
anywhere = st.builds(
    Point,
    st.floats(-90, 90, allow_nan=False),
    st.floats(-180, 180, allow_nan=False),
)
polar = st.builds(
    Point,
    st.one_of(st.floats(85, 90, allow_nan=False), st.floats(-90, -85, allow_nan=False)),
    st.floats(-180, 180, allow_nan=False),
)
antimeridian = st.builds(
    Point,
    st.floats(-30, 30, allow_nan=False),
    st.one_of(st.floats(179.9, 180, allow_nan=False), st.floats(-180, -179.9, allow_nan=False)),
)
points = st.one_of(
    tangsel, tangsel, tangsel, tangsel, anywhere, polar, antimeridian, st.sampled_from(SHARED)
)
caps = st.frozensets(st.sampled_from(["bls", "als", "transport", "aed", "obstetric"]), max_size=4)
statuses = st.sampled_from(
    [UnitStatus.AVAILABLE] * 4 + [UnitStatus.EN_ROUTE, UnitStatus.OFF_DUTY, UnitStatus.DISPATCHED]
)


@dataclass(frozen=True)
class Spec:
    kind: UnitKind
    caps: frozenset[str]
    base: Point
    status: UnitStatus
    fix: Point | None
    fix_age_min: float


specs = st.builds(
    Spec,
    st.sampled_from(list(UnitKind)),
    caps,
    points,
    statuses,
    st.none() | points,
    st.floats(-5, 90, allow_nan=False),
)


@dataclass(frozen=True)
class Move:
    target: int
    point: Point
    minutes: float


@dataclass(frozen=True)
class Status:
    target: int
    status: UnitStatus


@dataclass(frozen=True)
class Remove:
    target: int


ops = st.one_of(
    st.builds(Move, st.integers(0, 60), points, st.floats(-60, 60, allow_nan=False)),
    st.builds(Status, st.integers(0, 60), statuses),
    st.builds(Remove, st.integers(0, 60)),
)


@dataclass(frozen=True)
class Query:
    point: Point
    k: int
    minutes: float
    required: frozenset[str]
    kinds: frozenset[UnitKind] | None
    exclude: tuple[int, ...]


queries = st.builds(
    Query,
    points,
    st.integers(1, 12),
    st.floats(0, 120, allow_nan=False),
    st.frozensets(st.sampled_from(["bls", "als", "transport", "aed"]), max_size=2),
    st.none() | st.frozensets(st.sampled_from(list(UnitKind))),
    st.lists(st.integers(0, 60), max_size=3).map(tuple),
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    fleet=st.lists(specs, max_size=40),
    operations=st.lists(ops, max_size=15),
    asked=st.lists(queries, min_size=1, max_size=4),
    cell_size_m=st.sampled_from([150.0, 1000.0, 8000.0, 300_000.0]),
    max_age_min=st.sampled_from([10, 30]),
)
def test_index_equals_brute_force(
    fleet: list[Spec],
    operations: list[Move | Status | Remove],
    asked: list[Query],
    cell_size_m: float,
    max_age_min: int,
) -> None:
    index = UnitIndex(ETA, max_fix_age=timedelta(minutes=max_age_min), cell_size_m=cell_size_m)
    reference: dict[UnitId, Unit] = {}
    ids = [UnitId(f"u{i:02d}") for i in range(len(fleet))]
    for uid, spec in zip(ids, fleet, strict=True):
        fix_time = None if spec.fix is None else T0 - timedelta(minutes=spec.fix_age_min)
        u = unit(uid, spec.base, spec.kind, spec.caps, spec.status, spec.fix, fix_time)
        index.upsert(u)
        reference[uid] = u

    for op in operations:
        if not ids:
            break
        uid = ids[op.target % len(ids)]
        if uid not in reference:
            continue
        current = reference[uid]
        if isinstance(op, Move):
            at = T0 + timedelta(minutes=op.minutes)
            accepted = current.position_time is None or at >= current.position_time
            assert index.move(uid, op.point, at) is accepted
            if accepted:
                reference[uid] = current.moved(op.point, at)
        elif isinstance(op, Status):
            index.set_status(uid, op.status)
            reference[uid] = current.with_status(op.status)
        else:
            assert index.remove(uid) is True
            del reference[uid]

    assert sorted(u.id for u in index.units()) == sorted(reference)
    for q in asked:
        now = T0 + timedelta(minutes=q.minutes)
        exclude = frozenset(ids[i % len(ids)] for i in q.exclude) if ids else frozenset()
        got = index.recommend(q.point, q.k, now, q.required, q.kinds, exclude)
        want = brute_force_recommend(
            reference.values(),
            q.point,
            q.k,
            now,
            eta=ETA,
            max_fix_age=timedelta(minutes=max_age_min),
            required_capabilities=q.required,
            kinds=q.kinds,
            exclude=exclude,
        )
        assert got == want
