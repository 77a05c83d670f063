"""dispatch.doctrine and the tiered recommendation: first responders and carriers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dispatch.index
from dispatch.doctrine import UNTRIAGED, Needs, call_needs, needs_from_capabilities
from dispatch.errors import InvalidInput
from dispatch.geo import Point, geodesic_m
from dispatch.ids import UnitId
from dispatch.index import UnitIndex
from dispatch.recommend import Recommendation, brute_force_tiers, rank_unit
from dispatch.status import UnitStatus
from dispatch.triage import default_triage_table
from dispatch.units import DEFAULT_CAPABILITIES, POSSIBLE_CAPABILITIES, Unit, UnitKind, unit_capabilities
from tests.dispatch.test_index import ETA, T0, Spec, points, specs, unit

PATIENT = Point(-6.3000, 106.7000)


def test_a_triage_row_splits_into_care_and_transport() -> None:
    assert needs_from_capabilities(["bls", "aed", "transport"]) == Needs(frozenset({"bls", "aed"}), transport=True)
    assert needs_from_capabilities(["bls"]) == Needs(frozenset({"bls"}), transport=False)
    # A row that only asks for a stretcher still sends someone who can start basic life support first.
    assert needs_from_capabilities(["transport"]) == Needs(frozenset({"bls"}), transport=True)
    assert needs_from_capabilities([]) == Needs(frozenset({"bls"}), transport=False)
    assert Needs(frozenset({"als", "aed"}), True).capabilities() == ["aed", "als", "transport"]
    with pytest.raises(InvalidInput) as info:
        needs_from_capabilities(["bls", "warp"], "needs")
    assert info.value.field == "needs[1]"
    with pytest.raises(InvalidInput):
        Needs(frozenset({"transport"}), True)
    with pytest.raises(InvalidInput):
        Needs(frozenset(), False)


def test_untriaged_calls_need_basic_life_support() -> None:
    table = default_triage_table()
    assert call_needs(table, None) == UNTRIAGED == Needs(frozenset({"bls"}), transport=False)
    assert call_needs(table, "chest_pain") == Needs(frozenset({"bls", "aed"}), transport=True)
    assert call_needs(table, "labour") == Needs(frozenset({"bls"}), transport=True)
    assert call_needs(table, "general_sickness") == Needs(frozenset({"bls"}), transport=False)
    with pytest.raises(InvalidInput):
        call_needs(table, "no_such_type")


def test_every_default_call_type_can_be_served_by_the_default_fleet() -> None:
    # An ambulance with its defaults can start care for every call type and carry.
    ambulance = DEFAULT_CAPABILITIES[UnitKind.AMBULANCE]
    for call_type in default_triage_table():
        needs = call_needs(default_triage_table(), call_type.code)
        assert needs.first_responder(ambulance), call_type.code
        assert needs.missing(ambulance) == frozenset()


def test_missing_is_empty_for_either_tier() -> None:
    chest = Needs(frozenset({"bls", "aed"}), transport=True)
    assert chest.missing(frozenset({"bls", "aed"})) == frozenset()  # a first responder
    assert chest.missing(frozenset({"transport"})) == frozenset()  # a carrier
    assert chest.missing(frozenset({"bls"})) == {"aed"}
    assert UNTRIAGED.missing(frozenset({"transport"})) == {"bls"}  # no transport needed: a stretcher alone is not care


def test_kind_defaults_and_refusals() -> None:
    assert unit_capabilities(UnitKind.AMBULANCE, None) == {"bls", "aed", "transport"}
    assert unit_capabilities(UnitKind.AMBULANCE, []) == {"bls", "aed", "transport"}
    assert unit_capabilities(UnitKind.MOTORBIKE, None) == {"bls", "aed"}
    assert unit_capabilities(UnitKind.MOTORBIKE, ["bls", "als"]) == {"bls", "als"}
    for kind in UnitKind:
        assert DEFAULT_CAPABILITIES[kind] <= POSSIBLE_CAPABILITIES[kind]
    for impossible in ("transport", "neonatal", "rescue"):
        with pytest.raises(InvalidInput) as info:
            unit_capabilities(UnitKind.MOTORBIKE, ["bls", impossible])
        assert info.value.field == "capabilities" and impossible in info.value.message
    with pytest.raises(InvalidInput) as info:
        unit_capabilities(UnitKind.AMBULANCE, ["bls", "warp"])
    assert info.value.field == "capabilities[1]"


def test_a_unit_that_can_do_both_is_in_both_tiers() -> None:
    ambulance = unit("amb", Point(-6.3001, 106.7), caps=frozenset({"bls", "aed", "transport"}))
    bike = unit("mtr", Point(-6.3050, 106.7), UnitKind.MOTORBIKE, frozenset({"bls", "aed"}))
    carrier = unit("trn", Point(-6.3002, 106.7), caps=frozenset({"transport"}))
    index = UnitIndex(ETA)
    for u in (ambulance, bike, carrier):
        index.upsert(u)
    tiers = index.recommend_tiers(PATIENT, 5, T0, Needs(frozenset({"bls", "aed"}), transport=True))
    assert [r.unit_id for r in tiers.first_response] == ["amb", "mtr"]
    assert [r.unit_id for r in tiers.transport] == ["amb", "trn"]
    assert index.recommend_tiers(PATIENT, 5, T0, UNTRIAGED).transport == []


def test_a_unit_in_both_tiers_is_measured_once(monkeypatch: pytest.MonkeyPatch) -> None:
    index = UnitIndex(ETA)
    for n in range(6):
        index.upsert(unit(f"amb{n}", Point(-6.30 - n * 0.002, 106.7), caps=frozenset({"bls", "aed", "transport"})))
    measured: list[tuple[Point, Point]] = []

    def geodesic(a: Point, b: Point) -> float:
        measured.append((a, b))
        return geodesic_m(a, b)

    needs = Needs(frozenset({"bls", "aed"}), transport=True)
    alone = index.recommend_tiers(PATIENT, 3, T0, needs)
    monkeypatch.setattr(dispatch.index, "geodesic_m", geodesic)
    tiers = index.recommend_tiers(PATIENT, 3, T0, needs)
    assert tiers == alone
    assert [r.unit_id for r in tiers.first_response] == [r.unit_id for r in tiers.transport] == ["amb0", "amb1", "amb2"]
    assert len(measured) == len(set(measured)) >= 3


def naive_tier(units: list[Unit], point: Point, k: int, now: datetime, max_age: timedelta, exclude: frozenset[UnitId],
               wanted: frozenset[str]) -> list[Recommendation]:
    """The tier by its definition: every available, not excluded unit having ``wanted``, by (ETA, id)."""
    ranked = [
        rank_unit(u, point, now, ETA, max_age) for u in units
        if u.status is UnitStatus.AVAILABLE and u.id not in exclude and wanted <= u.capabilities
    ]
    return sorted(ranked, key=lambda r: (r.eta_s, r.unit_id))[:k]


@dataclass(frozen=True)
class Ask:
    point: Point
    k: int
    minutes: float
    care: frozenset[str]
    transport: bool
    exclude: tuple[int, ...]


asks = st.builds(
    Ask,
    points,
    st.integers(1, 10),
    st.floats(0, 120, allow_nan=False),
    st.frozensets(st.sampled_from(["bls", "als", "aed", "obstetric"]), min_size=1, max_size=3),
    st.booleans(),
    st.lists(st.integers(0, 40), max_size=3).map(tuple),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    fleet=st.lists(specs, max_size=40),
    asked=st.lists(asks, min_size=1, max_size=4),
    cell_size_m=st.sampled_from([150.0, 1000.0, 8000.0, 300_000.0]),
)
def test_tiers_equal_a_brute_force_scan(fleet: list[Spec], asked: list[Ask], cell_size_m: float) -> None:
    max_age = timedelta(minutes=30)
    index = UnitIndex(ETA, max_fix_age=max_age, cell_size_m=cell_size_m)
    units = []
    for i, spec in enumerate(fleet):
        fix_time = None if spec.fix is None else T0 - timedelta(minutes=spec.fix_age_min)
        u = unit(f"u{i:02d}", spec.base, spec.kind, spec.caps, spec.status, spec.fix, fix_time)
        index.upsert(u)
        units.append(u)
    ids = [u.id for u in units]
    for q in asked:
        now = T0 + timedelta(minutes=q.minutes)
        exclude = frozenset(ids[i % len(ids)] for i in q.exclude) if ids else frozenset()
        needs = Needs(q.care, q.transport)
        got = index.recommend_tiers(q.point, q.k, now, needs, exclude)
        assert got == brute_force_tiers(units, q.point, q.k, now, needs, eta=ETA, max_fix_age=max_age, exclude=exclude)
        assert got.first_response == naive_tier(units, q.point, q.k, now, max_age, exclude, q.care)
        assert got.transport == (naive_tier(units, q.point, q.k, now, max_age, exclude, frozenset({"transport"}))
                                 if q.transport else [])
        # A unit in the top k of both definitions appears in both lists.
        carriers = {r.unit_id for r in got.transport}
        for rec in got.first_response:
            if q.transport and "transport" in rec.capabilities and rec.unit_id not in carriers:
                assert len(got.transport) == q.k and got.transport[-1].sort_key < rec.sort_key


def test_the_next_unit_is_a_carrier_once_care_has_started_and_nobody_carries() -> None:
    chest = Needs(frozenset({"bls", "aed"}), transport=True)
    bike, ambulance, stretcher = frozenset({"bls", "aed"}), frozenset({"bls", "aed", "transport"}), frozenset({"transport"})
    assert chest.carrier_next([bike])
    assert not chest.carrier_next([])  # nobody serves: a first responder first
    assert not chest.carrier_next([stretcher])  # carried, but nobody starts care
    assert not chest.carrier_next([bike, stretcher])
    assert not chest.carrier_next([ambulance])
    assert not UNTRIAGED.carrier_next([bike])
