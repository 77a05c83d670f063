"""dispatch.hospitals: capable hospitals first by ETA, ties by code, and the warnings the operator needs."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch.availability import DEFAULT_STALE_AFTER, Availability, Figure, Freshness, Readiness
from dispatch.errors import InvalidInput
from dispatch.geo import Point
from dispatch.hospitals import (
    NEAREST_FIGURES_STALE,
    NEAREST_LACKS_SERVICE,
    NEAREST_NO_IGD_BED,
    NEAREST_SERVICE_DOWN,
    NO_HOSPITAL_HAS_SERVICE,
    READINESS_ORDER,
    Hospital,
    Ranking,
    parse_service,
    parse_services,
    rank_hospitals,
)

SCENE = Point(-6.30, 106.70)

# Hospitals stand due north of the scene; the ETA is a fixed table by code, so the tests say the order they mean.
ETAS = {"rs-a": 300.0, "rs-b": 300.0, "rs-c": 600.0, "rs-d": 900.0}


def hospital(code: str, *services: str, km: float = 1.0) -> Hospital:
    return Hospital(code, f"RS {code[-1].upper()}", Point(SCENE.lat + km / 111.0, SCENE.lon), frozenset(services))


def rank(hospitals: list[Hospital], service: str | None) -> Ranking:
    at = {h.location: ETAS[h.code] for h in hospitals}
    return rank_hospitals(SCENE, hospitals, needed_service=service, eta=lambda scene, location: at[location])


def test_without_a_needed_service_every_hospital_is_capable_in_plain_eta_order() -> None:
    hospitals = [hospital("rs-d", km=4), hospital("rs-c", "ct", km=3), hospital("rs-b", km=2), hospital("rs-a", km=1)]
    ranking = rank(hospitals, None)
    assert [r.hospital.code for r in ranking.hospitals] == ["rs-a", "rs-b", "rs-c", "rs-d"]
    assert all(r.capable for r in ranking.hospitals)
    assert ranking.needed_service is None and ranking.warnings == ()


def test_capable_hospitals_come_first_by_eta_then_the_others_marked_incapable() -> None:
    hospitals = [hospital("rs-a", "ct", km=1), hospital("rs-b", km=2), hospital("rs-c", "cath_lab", km=3),
                 hospital("rs-d", "cath_lab", "ct", km=4)]
    ranking = rank(hospitals, "cath_lab")
    assert [(r.hospital.code, r.capable) for r in ranking.hospitals] == [
        ("rs-c", True), ("rs-d", True), ("rs-a", False), ("rs-b", False)]
    assert ranking.needed_service == "cath_lab"
    # Distances are the scene's, whatever the order: rs-c is 3 km north.
    assert ranking.hospitals[0].distance_m == pytest.approx(3000, rel=0.01)


def test_equal_etas_are_ordered_by_code() -> None:
    hospitals = [hospital("rs-b", "ct", km=2), hospital("rs-a", "ct", km=1)]
    assert [r.hospital.code for r in rank(hospitals, "ct").hospitals] == ["rs-a", "rs-b"]
    assert [r.hospital.code for r in rank(list(reversed(hospitals)), "ct").hospitals] == ["rs-a", "rs-b"]


def test_the_nearest_hospital_lacking_the_service_is_named_with_the_service_and_the_nearest_that_has_it() -> None:
    hospitals = [hospital("rs-a", "ct", km=1), hospital("rs-c", "cath_lab", km=3), hospital("rs-d", "cath_lab", km=4)]
    (warning,) = rank(hospitals, "cath_lab").warnings
    assert warning.to_dict() == {"kind": NEAREST_LACKS_SERVICE, "service": "cath_lab", "hospital": "rs-a",
                                 "hospital_name": "RS A", "nearest_capable": "rs-c"}


def test_no_warning_when_a_capable_hospital_is_as_near_as_the_nearest() -> None:
    # rs-a and rs-b share the soonest ETA; rs-b has the service, so the operator loses nothing by going there.
    hospitals = [hospital("rs-a", km=1), hospital("rs-b", "cath_lab", km=2), hospital("rs-c", km=3)]
    ranking = rank(hospitals, "cath_lab")
    assert ranking.warnings == ()
    assert ranking.hospitals[0].hospital.code == "rs-b"


def test_no_warning_when_the_nearest_has_the_service() -> None:
    hospitals = [hospital("rs-a", "obstetrics", km=1), hospital("rs-c", km=3)]
    assert rank(hospitals, "obstetrics").warnings == ()


def test_when_no_hospital_has_the_service_all_are_listed_by_eta_and_a_warning_says_so() -> None:
    hospitals = [hospital("rs-c", km=3), hospital("rs-a", km=1)]
    ranking = rank(hospitals, "burns")
    assert [(r.hospital.code, r.capable) for r in ranking.hospitals] == [("rs-a", False), ("rs-c", False)]
    assert [w.to_dict() for w in ranking.warnings] == [{"kind": NO_HOSPITAL_HAS_SERVICE, "service": "burns", "hospital": None,
                                                         "hospital_name": None, "nearest_capable": None}]


def test_no_hospitals_no_ranking_and_no_warning() -> None:
    ranking = rank([], "ct")
    assert ranking.hospitals == () and ranking.warnings == ()


def test_an_unknown_needed_service_is_refused_naming_the_field() -> None:
    with pytest.raises(InvalidInput) as err:
        rank([hospital("rs-a", km=1)], "cathlab")
    assert err.value.field == "needed_service"


def test_service_names_are_checked_naming_the_field() -> None:
    assert parse_services(["ct", "icu", "ct"], "hospitals[0].services") == frozenset({"ct", "icu"})
    with pytest.raises(InvalidInput) as err:
        parse_services(["ct", "CT"], "hospitals[0].services")
    assert err.value.field == "hospitals[0].services[1]" and "'CT'" in err.value.message
    with pytest.raises(InvalidInput) as err:
        parse_services("ct", "services")
    assert err.value.field == "services"
    assert parse_service(None) is None
    with pytest.raises(InvalidInput) as err:
        parse_service(7, "call_types.stroke.service")
    assert err.value.field == "call_types.stroke.service"


def test_a_hospital_with_an_unknown_service_is_refused() -> None:
    with pytest.raises(InvalidInput) as err:
        Hospital("rs-a", "RS A", SCENE, frozenset({"helipad"}))
    assert err.value.field.startswith("services")


# --- What the hospitals report now: free IGD beds and the needed service, fresh, stale or unknown.

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


def reporting(code: str, *services: str, km: float, igd: int | None = None, running: dict[str, bool] | None = None,
              hours_ago: float = 0.0) -> Hospital:
    at = NOW - timedelta(hours=hours_ago)
    beds = {"igd": Figure(igd, at, "desk")} if igd is not None else {}
    states = {s: Figure(v, at, "desk") for s, v in (running or {}).items()}
    return replace(hospital(code, *services, km=km), availability=Availability(beds, states))


def rank_now(hospitals: list[Hospital], service: str | None) -> Ranking:
    at = {h.location: ETAS[h.code] for h in hospitals}
    return rank_hospitals(SCENE, hospitals, needed_service=service, eta=lambda scene, location: at[location], now=NOW)


def test_a_hospital_ready_now_comes_before_a_nearer_one_with_no_igd_bed_and_the_operator_is_told() -> None:
    hospitals = [reporting("rs-a", "cath_lab", km=1, igd=0, running={"cath_lab": True}),
                 reporting("rs-c", "cath_lab", km=3, igd=2, running={"cath_lab": True})]
    ranking = rank_now(hospitals, "cath_lab")
    assert [(r.hospital.code, r.readiness) for r in ranking.hospitals] == [("rs-c", Readiness.READY), ("rs-a", Readiness.NOT_READY)]
    assert [w.to_dict() for w in ranking.warnings] == [{"kind": NEAREST_NO_IGD_BED, "service": "cath_lab", "hospital": "rs-a",
                                                         "hospital_name": "RS A", "nearest_capable": "rs-c"}]


def test_the_nearest_with_the_service_down_now_is_ranked_after_one_where_it_runs_and_warned() -> None:
    hospitals = [reporting("rs-a", "ct", km=1, igd=3, running={"ct": False}), reporting("rs-c", "ct", km=3, igd=1, running={"ct": True}),
                 reporting("rs-b", km=2, igd=5)]
    ranking = rank_now(hospitals, "ct")
    assert [(r.hospital.code, r.capable) for r in ranking.hospitals] == [("rs-c", True), ("rs-a", True), ("rs-b", False)]
    assert [(w.kind, w.hospital, w.nearest_capable) for w in ranking.warnings] == [(NEAREST_SERVICE_DOWN, "rs-a", "rs-c")]


def test_unknown_and_stale_figures_rank_between_ready_and_not_ready_and_a_stale_nearest_is_warned() -> None:
    hospitals = [reporting("rs-a", km=1, igd=4, hours_ago=7), reporting("rs-b", km=2), reporting("rs-c", km=3, igd=0),
                 reporting("rs-d", km=4, igd=1)]
    ranking = rank_now(hospitals, None)
    assert [(r.hospital.code, r.readiness, r.igd) for r in ranking.hospitals] == [
        ("rs-d", Readiness.READY, Freshness.FRESH), ("rs-a", Readiness.UNCONFIRMED, Freshness.STALE),
        ("rs-b", Readiness.UNCONFIRMED, Freshness.UNKNOWN), ("rs-c", Readiness.NOT_READY, Freshness.FRESH)]
    assert [w.to_dict() for w in ranking.warnings] == [{"kind": NEAREST_FIGURES_STALE, "service": None, "hospital": "rs-a",
                                                         "hospital_name": "RS A", "nearest_capable": "rs-d"}]


def test_a_nearest_that_never_reported_is_not_warned_about_and_keeps_its_eta_place_among_the_unconfirmed() -> None:
    hospitals = [reporting("rs-a", "ct", km=1), reporting("rs-c", "ct", km=3, igd=2, hours_ago=9, running={"ct": True})]
    ranking = rank_now(hospitals, "ct")
    assert [r.hospital.code for r in ranking.hospitals] == ["rs-a", "rs-c"] and ranking.warnings == ()


def test_a_nearest_lacking_the_service_and_without_an_igd_bed_gets_both_warnings() -> None:
    hospitals = [reporting("rs-a", km=1, igd=0), reporting("rs-c", "cath_lab", km=3, igd=1, running={"cath_lab": True})]
    kinds = [(w.kind, w.nearest_capable) for w in rank_now(hospitals, "cath_lab").warnings]
    assert kinds == [(NEAREST_LACKS_SERVICE, "rs-c"), (NEAREST_NO_IGD_BED, "rs-c")]


def test_a_bed_warning_names_no_alternative_when_no_hospital_is_ready() -> None:
    hospitals = [reporting("rs-a", km=1, igd=0), reporting("rs-c", km=3)]
    (warning,) = rank_now(hospitals, None).warnings
    assert (warning.kind, warning.nearest_capable) == (NEAREST_NO_IGD_BED, None)


def test_reported_figures_need_a_now_to_be_judged() -> None:
    with pytest.raises(InvalidInput) as err:
        rank([reporting("rs-a", km=1, igd=2)], None)
    assert err.value.field == "now"


def test_a_hospital_reporting_a_service_it_does_not_have_is_refused() -> None:
    with pytest.raises(InvalidInput) as err:
        reporting("rs-a", "ct", km=1, running={"cath_lab": True})
    assert err.value.field == "availability.services.cath_lab"


CODES = sorted(ETAS)
figure_st = st.one_of(st.none(), st.tuples(st.integers(0, 3), st.sampled_from([0.0, 1.0, 7.0])))
service_st = st.one_of(st.none(), st.tuples(st.booleans(), st.sampled_from([0.0, 7.0])))


@st.composite
def reporting_hospitals(draw: st.DrawFn) -> list[Hospital]:
    found = []
    for n, code in enumerate(draw(st.lists(st.sampled_from(CODES), unique=True))):
        has_ct = draw(st.booleans())
        igd, state = draw(figure_st), draw(service_st) if has_ct else None
        beds = {"igd": Figure(igd[0], NOW - timedelta(hours=igd[1]), "d")} if igd else {}
        states = {"ct": Figure(state[0], NOW - timedelta(hours=state[1]), "d")} if state else {}
        found.append(replace(hospital(code, *(["ct"] if has_ct else []), km=n + 1), availability=Availability(beds, states)))
    return found


@given(reporting_hospitals(), st.sampled_from([None, "ct"]))
@settings(max_examples=300, deadline=None)
def test_every_hospital_is_listed_in_group_then_readiness_then_eta_order(hospitals: list[Hospital], service: str | None) -> None:
    ranking = rank_now(hospitals, service)
    assert sorted(r.hospital.code for r in ranking.hospitals) == sorted(h.code for h in hospitals)  # nobody hidden
    keys = [(not r.capable, READINESS_ORDER[r.readiness], r.eta_s, r.hospital.code) for r in ranking.hospitals]
    assert keys == sorted(keys)
    for r in ranking.hospitals:
        figures = r.hospital.availability
        igd = figures.beds.get("igd")
        fresh_igd = igd is not None and NOW - igd.at <= DEFAULT_STALE_AFTER
        needs = service if r.capable else None
        running = figures.services.get(needs) if needs else None
        fresh_running = running is not None and NOW - running.at <= DEFAULT_STALE_AFTER
        ready = fresh_igd and igd is not None and igd.value > 0 and (needs is None or (fresh_running and running is not None and running.value))
        assert (r.readiness is Readiness.READY) == ready


@given(reporting_hospitals(), st.sampled_from([None, "ct"]))
@settings(max_examples=200, deadline=None)
def test_without_fresh_figures_the_order_is_the_plain_one(hospitals: list[Hospital], service: str | None) -> None:
    # Six hours and a minute later every figure is stale: availability no longer moves anyone.
    at = {h.location: ETAS[h.code] for h in hospitals}
    later = rank_hospitals(SCENE, hospitals, needed_service=service, eta=lambda s, loc: at[loc], now=NOW + timedelta(hours=6, minutes=1))
    plain = rank_hospitals(SCENE, [replace(h, availability=Availability()) for h in hospitals], needed_service=service,
                           eta=lambda s, loc: at[loc])
    assert [r.hospital.code for r in later.hospitals] == [r.hospital.code for r in plain.hospitals]
    assert all(r.readiness is Readiness.UNCONFIRMED for r in later.hospitals)
