"""dispatch.hospitals: capable hospitals first by ETA, ties by code, and the warnings the operator needs."""

from __future__ import annotations

import pytest

from dispatch.errors import InvalidInput
from dispatch.geo import Point
from dispatch.hospitals import (
    NEAREST_LACKS_SERVICE,
    NO_HOSPITAL_HAS_SERVICE,
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
