"""dispatch.metrics: response intervals, percentiles and the NFPA 1225 check."""

from __future__ import annotations

import statistics
from datetime import datetime, timedelta, timezone

import pytest

from dispatch.errors import InvalidInput
from dispatch.metrics import (
    Handover,
    IncidentTimes,
    IntervalSummary,
    intervals,
    nfpa1225_check,
    offload_by_hospital,
    percentile,
    summarize,
    summarize_intervals,
)

T0 = datetime(2024, 5, 1, 8, 0, tzinfo=timezone(timedelta(hours=7)))


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_intervals_of_one_incident() -> None:
    times = IncidentTimes(
        received_at=T0, dispatched_at=at(45), acknowledged_at=at(75), on_scene_at=at(645), closed_at=at(3600)
    )
    result = intervals(times)
    assert result.call_to_dispatch_s == 45.0
    assert result.dispatch_to_ack_s == 30.0
    assert result.dispatch_to_on_scene_s == 600.0
    assert result.call_to_close_s == 3600.0


def test_missing_timestamps_give_none() -> None:
    result = intervals(IncidentTimes(received_at=T0, closed_at=at(120)))
    assert result.call_to_dispatch_s is None
    assert result.dispatch_to_ack_s is None
    assert result.dispatch_to_on_scene_s is None
    assert result.call_to_close_s == 120.0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"dispatched_at": at(-1)}, "dispatched_at"),
        ({"acknowledged_at": at(10)}, "acknowledged_at"),
        ({"dispatched_at": at(30), "on_scene_at": at(20)}, "on_scene_at"),
        ({"closed_at": datetime(2024, 5, 1, 9)}, "closed_at"),
    ],
)
def test_times_validation(kwargs: dict[str, datetime], field: str) -> None:
    with pytest.raises(InvalidInput) as info:
        IncidentTimes(received_at=T0, **kwargs)
    assert info.value.field == field


def test_percentiles_hand_computed() -> None:
    values = [30.0, 10.0, 20.0, 50.0, 40.0]  # sorted: 10 20 30 40 50
    assert percentile(values, 0.5) == 30.0
    # h = 4 * 0.9 = 3.6 -> 40 + 0.6 * (50 - 40) = 46
    assert percentile(values, 0.9) == pytest.approx(46.0)
    assert percentile(values, 0.0) == 10.0
    assert percentile(values, 1.0) == 50.0
    # Even count: h = 3 * 0.5 = 1.5 -> 20 + 0.5 * 10 = 25
    assert percentile([10.0, 20.0, 30.0, 40.0], 0.5) == 25.0
    # h = 3 * 0.9 = 2.7 -> 30 + 0.7 * 10 = 37
    assert percentile([10.0, 20.0, 30.0, 40.0], 0.9) == pytest.approx(37.0)
    assert percentile([42.0], 0.9) == 42.0


def test_percentiles_match_statistics_inclusive() -> None:
    values = [12.0, 95.0, 33.0, 61.0, 8.0, 45.0, 120.0, 58.0, 70.0, 15.0, 49.0]
    cuts = statistics.quantiles(values, n=10, method="inclusive")
    assert percentile(values, 0.5) == pytest.approx(cuts[4])
    assert percentile(values, 0.9) == pytest.approx(cuts[8])


def test_percentile_validation() -> None:
    with pytest.raises(InvalidInput) as info:
        percentile([], 0.5)
    assert info.value.field == "values"
    with pytest.raises(InvalidInput) as info:
        percentile([1.0], 1.5)
    assert info.value.field == "p"


def test_summaries() -> None:
    assert summarize([None, None]) == IntervalSummary(0, None, None)
    five = summarize([10.0, None, 20.0, 30.0, 40.0, 50.0])
    assert (five.count, five.p50_s) == (5, 30.0)
    assert five.p90_s == pytest.approx(46.0)
    all_intervals = [
        intervals(IncidentTimes(received_at=T0, dispatched_at=at(s), on_scene_at=at(s + 600)))
        for s in (10, 20, 30, 40, 50)
    ] + [intervals(IncidentTimes(received_at=T0, closed_at=at(60)))]
    summary = summarize_intervals(all_intervals)
    dispatch = summary["call_to_dispatch_s"]
    assert (dispatch.count, dispatch.p50_s) == (5, 30.0)
    assert dispatch.p90_s == pytest.approx(46.0)
    assert summary["dispatch_to_on_scene_s"] == IntervalSummary(5, 600.0, 600.0)
    assert summary["dispatch_to_ack_s"] == IntervalSummary(0, None, None)
    assert summary["call_to_close_s"] == IntervalSummary(1, 60.0, 60.0)


def test_nfpa1225() -> None:
    values: list[float | None] = [20.0, 45.0, 60.0, 61.0, None, 30.0]
    check = nfpa1225_check(values)
    assert check.count == 5 and check.within_limit == 4
    assert check.share == pytest.approx(0.8)
    assert check.limit_s == 60.0 and check.target_share == 0.9
    assert not check.met
    good = nfpa1225_check([10.0] * 9 + [90.0])
    assert good.share == pytest.approx(0.9) and good.met
    empty = nfpa1225_check([None])
    assert empty.share is None and not empty.met


def test_offload_time_per_hospital() -> None:
    t0 = T0
    handovers = [
        Handover("rs-b", t0, t0 + timedelta(minutes=10)),
        Handover("rs-a", t0, t0 + timedelta(minutes=30)),
        Handover("rs-b", t0, t0 + timedelta(minutes=20)),
        Handover("rs-b", t0 + timedelta(minutes=5), t0),  # clocks disagree: the crew was there, zero
    ]
    summary = offload_by_hospital(handovers)
    assert list(summary) == ["rs-a", "rs-b"]
    assert (summary["rs-a"].count, summary["rs-a"].p50_s) == (1, 1800.0)
    assert (summary["rs-b"].count, summary["rs-b"].p50_s, summary["rs-b"].p90_s) == (3, 600.0, 1080.0)
    assert offload_by_hospital([]) == {}
