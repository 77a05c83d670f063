"""Vitals plausibility: typos are refused naming the field; a critically ill patient's values are not."""

from __future__ import annotations

import datetime as dt

import pytest

from dispatch.errors import InvalidInput
from dispatch.vitals import RANGES, Sex, parse_patient, parse_vitals

NOW = dt.datetime(2026, 12, 1, 1, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize("fields,field", [
    ({"pulse": 980}, "pulse"),
    ({"pulse": -1}, "pulse"),
    ({"spo2": 9}, "spo2"),
    ({"spo2": 101}, "spo2"),
    ({"gcs": 2}, "gcs"),
    ({"gcs": 16}, "gcs"),
    ({"resp_rate": 81}, "resp_rate"),
    ({"pulse": True}, "pulse"),
    ({"pulse": 80.5}, "pulse"),
    ({"systolic": 120}, "diastolic"),
    ({"diastolic": 80}, "systolic"),
    ({"systolic": 90, "diastolic": 90}, "diastolic"),
    ({"systolic": 3000, "diastolic": 80}, "systolic"),
    ({}, "vitals"),
    ({"pulse": 80, "temp": 38}, "temp"),
    ({"pulse": 80, "measured_at": "yesterday"}, "measured_at"),
    ({"pulse": 80, "measured_at": "2026-12-01T00:30:00"}, "measured_at"),
    ({"pulse": 80, "measured_at": "2026-12-01T01:30:00+00:00"}, "measured_at"),
    ({"pulse": 80, "measured_at": "2026-11-30T18:00:00+00:00"}, "measured_at"),
])
def test_implausible_values_name_the_field(fields: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_vitals(fields, NOW)
    assert caught.value.field == field


def test_the_extremes_of_a_critically_ill_patient_are_accepted() -> None:
    lowest = {name: low for name, (low, _) in RANGES.items()} | {"systolic": 20, "diastolic": 10}
    assert parse_vitals(lowest, NOW).signs() == lowest
    highest = {name: high for name, (_, high) in RANGES.items()} | {"diastolic": 200, "systolic": 300}
    assert parse_vitals(highest, NOW).signs() == highest
    arrest = parse_vitals({"pulse": 0, "resp_rate": 0, "gcs": 3}, NOW)
    assert arrest.signs() == {"pulse": 0, "resp_rate": 0, "gcs": 3} and arrest.measured_at == NOW


def test_a_set_kept_on_the_phone_keeps_its_measured_time_in_any_zone() -> None:
    vitals = parse_vitals({"spo2": 92, "measured_at": "2026-12-01T06:15:00+07:00"}, NOW)
    assert vitals.measured_at == dt.datetime(2026, 11, 30, 23, 15, tzinfo=dt.UTC)


def test_the_patient() -> None:
    assert parse_patient({"age": 0, "sex": "female"}).sex is Sex.FEMALE
    for fields, field in (({"age": 121}, "age"), ({"age": "7"}, "age"), ({"sex": "m"}, "sex"), ({"name": "x"}, "name")):
        with pytest.raises(InvalidInput) as caught:
            parse_patient(fields)
        assert caught.value.field == field
