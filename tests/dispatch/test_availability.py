"""dispatch.availability: figures, their age, what they say about taking a patient now, and checked updates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dispatch.availability import (
    DEFAULT_STALE_AFTER,
    Availability,
    Figure,
    Freshness,
    Readiness,
    freshness,
    parse_beds,
    parse_service_states,
    readiness,
)
from dispatch.errors import InvalidInput

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
SIX_H = timedelta(hours=6)


def fig(value: int | bool, hours_ago: float = 0.0) -> Figure:
    return Figure(value, NOW - timedelta(hours=hours_ago), "igd-desk")


def test_the_default_stale_age_is_six_hours() -> None:
    assert DEFAULT_STALE_AFTER == SIX_H


def test_a_figure_is_fresh_up_to_the_stale_age_then_stale_and_unknown_when_never_reported() -> None:
    assert freshness(fig(3, hours_ago=6), NOW, SIX_H) is Freshness.FRESH
    assert freshness(Figure(3, NOW - SIX_H - timedelta(seconds=1), "x"), NOW, SIX_H) is Freshness.STALE
    assert freshness(None, NOW, SIX_H) is Freshness.UNKNOWN
    # A figure stamped ahead of ``now`` (another process's clock) is the newest there is.
    assert freshness(fig(3, hours_ago=-0.01), NOW, SIX_H) is Freshness.FRESH


@pytest.mark.parametrize(("beds", "services", "service", "expected"), [
    ({"igd": fig(2)}, {}, None, Readiness.READY),
    ({"igd": fig(2)}, {"ct": fig(True)}, "ct", Readiness.READY),
    ({"igd": fig(0)}, {"ct": fig(True)}, "ct", Readiness.NOT_READY),
    ({"igd": fig(2)}, {"ct": fig(False)}, "ct", Readiness.NOT_READY),
    ({"igd": fig(2)}, {}, "ct", Readiness.UNCONFIRMED),  # the service's state was never reported
    ({}, {"ct": fig(True)}, "ct", Readiness.UNCONFIRMED),  # nor the IGD's beds: unknown is not 0
    ({"igd": fig(2, hours_ago=7)}, {"ct": fig(True)}, "ct", Readiness.UNCONFIRMED),
    ({"igd": fig(0, hours_ago=7)}, {"ct": fig(True)}, "ct", Readiness.UNCONFIRMED),  # a stale 0 is not believed either
    ({"igd": fig(2, hours_ago=7)}, {"ct": fig(False)}, "ct", Readiness.NOT_READY),  # a fresh "down" is
    ({"igd": fig(2), "icu": fig(0)}, {}, None, Readiness.READY),  # only the IGD's beds decide
])
def test_readiness_reads_the_igd_beds_and_the_needed_service(
    beds: dict[str, Figure], services: dict[str, Figure], service: str | None, expected: Readiness,
) -> None:
    assert readiness(Availability(beds, services), service, NOW, SIX_H) is expected


def test_bed_counts_are_checked_naming_the_field() -> None:
    assert parse_beds({"igd": 0, "ward": 9999}) == {"igd": 0, "ward": 9999}
    for bad, field in [({"igd": -1}, "beds.igd"), ({"igd": 10000}, "beds.igd"), ({"igd": 2.5}, "beds.igd"),
                       ({"igd": True}, "beds.igd"), ({"igd": "3"}, "beds.igd"), ({"maternity": 2}, "beds.maternity"),
                       ([2], "beds")]:
        with pytest.raises(InvalidInput) as err:
            parse_beds(bad)
        assert err.value.field == field, bad


def test_service_states_are_checked_against_the_hospital_s_services() -> None:
    offered = frozenset({"ct", "icu"})
    assert parse_service_states({"ct": False}, offered) == {"ct": False}
    with pytest.raises(InvalidInput) as err:
        parse_service_states({"cath_lab": True}, offered)
    assert err.value.field == "services.cath_lab" and "ct, icu" in err.value.message
    with pytest.raises(InvalidInput) as err:
        parse_service_states({"ct": 1}, offered)
    assert err.value.field == "services.ct"


def test_figures_are_checked_when_built() -> None:
    with pytest.raises(InvalidInput):
        Figure(-1, NOW, "x")
    with pytest.raises(InvalidInput):
        Figure(1, NOW.replace(tzinfo=None), "x")
    with pytest.raises(InvalidInput) as err:
        Availability({"maternity": fig(1)})
    assert err.value.field == "beds.maternity"
    with pytest.raises(InvalidInput) as err:
        Availability({"igd": fig(True)})
    assert err.value.field == "beds.igd"
    with pytest.raises(InvalidInput) as err:
        Availability({}, {"ct": fig(3)})
    assert err.value.field == "services.ct"
