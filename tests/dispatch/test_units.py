"""dispatch.units and dispatch.capabilities: unit values and their vocabulary."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from dispatch.capabilities import CAPABILITIES, parse_capabilities
from dispatch.errors import InvalidInput
from dispatch.geo import Point
from dispatch.ids import IncidentId, UnitId, incident_id, unit_id
from dispatch.status import UnitStatus
from dispatch.units import DEFAULT_CAPABILITIES, Unit, UnitKind, parse_unit_kind

WIB = timezone(timedelta(hours=7))
T0 = datetime(2024, 5, 1, 8, 0, tzinfo=WIB)
BASE = Point(-6.2886, 106.7179)  # Ciputat


def make(**changes: object) -> Unit:
    fields: dict[str, object] = {
        "id": UnitId("MTR-CPT-01"),
        "callsign": "Motor Ciputat 1",
        "kind": UnitKind.MOTORBIKE,
        "capabilities": DEFAULT_CAPABILITIES[UnitKind.MOTORBIKE],
        "base": BASE,
        "status": UnitStatus.AVAILABLE,
    }
    fields.update(changes)
    return Unit(**fields)  # type: ignore[arg-type]


def test_kinds_and_vocabulary() -> None:
    assert [k.value for k in UnitKind] == ["ambulance", "motorbike"]
    assert CAPABILITIES == {"bls", "als", "transport", "aed", "obstetric", "neonatal", "rescue"}
    assert DEFAULT_CAPABILITIES[UnitKind.MOTORBIKE] == {"bls", "aed"}
    assert DEFAULT_CAPABILITIES[UnitKind.AMBULANCE] == {"bls", "aed", "transport"}
    assert parse_unit_kind("motorbike") is UnitKind.MOTORBIKE
    with pytest.raises(InvalidInput) as info:
        parse_unit_kind("helicopter")
    assert info.value.field == "kind"


def test_parse_capabilities() -> None:
    assert parse_capabilities(["als", "bls", "als"]) == frozenset({"als", "bls"})
    with pytest.raises(InvalidInput) as info:
        parse_capabilities(["bls", "flying"], "units.3.capabilities")
    assert info.value.field == "units.3.capabilities[1]"
    with pytest.raises(InvalidInput) as info:
        parse_capabilities("bls")
    assert info.value.field == "capabilities"


def test_unit_moves_and_changes_status() -> None:
    unit = make()
    fix = Point(-6.30, 106.72)
    moved = unit.moved(fix, T0)
    assert moved.position == fix and moved.position_time == T0
    assert unit.position is None  # values are immutable
    assert moved.with_status(UnitStatus.DISPATCHED).status is UnitStatus.DISPATCHED
    assert moved.has_capabilities(frozenset({"aed"}))
    assert not moved.has_capabilities(frozenset({"transport"}))


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"id": ""}, "id"),
        ({"id": "has space"}, "id"),
        ({"id": "x" * 65}, "id"),
        ({"callsign": ""}, "callsign"),
        ({"callsign": "x" * 33}, "callsign"),
        ({"kind": "car"}, "kind"),
        ({"capabilities": {"bls"}}, "capabilities"),
        ({"capabilities": frozenset({"bls", "xray"})}, "capabilities[1]"),
        ({"base": (-6.3, 106.7)}, "base"),
        ({"status": "available"}, "status"),
        ({"position": Point(-6.3, 106.7)}, "position_time"),
        ({"position_time": T0}, "position_time"),
        ({"position": Point(-6.3, 106.7), "position_time": datetime(2024, 5, 1)}, "position_time"),
    ],
)
def test_unit_validation_names_the_field(changes: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as info:
        make(**changes)
    assert info.value.field == field


def test_ids() -> None:
    assert unit_id("AMB-01") == UnitId("AMB-01")
    assert incident_id("5f1c0f1e-0000-4000-8000-000000000001") == IncidentId(
        "5f1c0f1e-0000-4000-8000-000000000001"
    )
    for bad in ("", " ", "a b", "x\n", 12, None):
        with pytest.raises(InvalidInput) as info:
            unit_id(bad)
        assert info.value.field == "unit_id"
    with pytest.raises(InvalidInput) as info:
        incident_id("", "duplicate_of")
    assert info.value.field == "duplicate_of"
