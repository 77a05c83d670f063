"""dispatch.eido and dispatch.timeline: the EIDO-like export."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any, cast

import pytest

from dispatch.call import Call
from dispatch.eido import EIDO_VERSION, incident_to_eido
from dispatch.errors import InvalidInput
from dispatch.geo import Point
from dispatch.ids import IncidentId, UnitId
from dispatch.incident import Incident, IncidentState
from dispatch.outcome import Outcome
from dispatch.priority import Priority
from dispatch.status import UnitStatus
from dispatch.timeline import TimelineEntry
from dispatch.triage import default_triage_table
from dispatch.units import Unit, UnitKind

T0 = datetime(2024, 5, 1, 8, 0, tzinfo=timezone(timedelta(hours=7)))
AGENCY = "psc119.tangerangselatankota.go.id"
TRACKING = f"urn:emergency:uid:incidentid:inc-42:{AGENCY}"

CALL = Call(
    phone="081234567890",
    received_at=T0,
    caller_name="Budi",
    location=Point(-6.3428, 106.7386),
    address="Jl. Siliwangi No. 5",
    kelurahan="Pamulang Barat",
    kecamatan="Pamulang",
    call_type="chest_pain",
    notes="Nyeri dada kiri sejak 30 menit",
)
BIKE = Unit(
    UnitId("MTR-PML-01"),
    "Motor Pamulang 1",
    UnitKind.MOTORBIKE,
    frozenset({"bls", "aed"}),
    Point(-6.34, 106.73),
    UnitStatus.AVAILABLE,
)
TIMELINE = [
    TimelineEntry(T0 + timedelta(seconds=40), "unit_dispatched", UnitId("MTR-PML-01")),
    TimelineEntry(T0, "call_received", text="Panggilan masuk"),
    TimelineEntry(T0 + timedelta(minutes=9), "unit_status.on_scene", UnitId("MTR-PML-01")),
]


def parts(doc: dict[str, object], key: str) -> list[dict[str, Any]]:
    """One component list of an export, typed for the assertions below."""
    return cast(list[dict[str, Any]], doc[key])


def closed_incident() -> Incident:
    inc = Incident(IncidentId("inc-42"), CALL, Priority.MERAH)
    inc = inc.advance(IncidentState.DISPATCHED).advance(IncidentState.ON_SCENE)
    return inc.close(Outcome.EMERGENCY, T0 + timedelta(minutes=40))


def test_export_shape() -> None:
    doc = incident_to_eido(
        closed_incident(),
        agency_id=AGENCY,
        generated_at=T0 + timedelta(hours=1),
        units=[BIKE],
        timeline=TIMELINE,
        table=default_triage_table(),
    )
    assert json.loads(json.dumps(doc)) == doc  # JSON-serialisable as is
    assert doc["$id"] == TRACKING
    assert doc["eidoVersion"] == EIDO_VERSION == "1.0"
    assert doc["lastUpdateTimeStamp"] == "2024-05-01T09:00:00+07:00"
    (incident,) = parts(doc, "incidentComponent")
    assert incident["incidentTrackingIdentifier"] == TRACKING
    assert incident["internalIncidentId"] == "inc-42"
    assert incident["incidentTypeInternalCode"] == "chest_pain"
    assert incident["incidentTypeInternalText"] == "Chest pain"
    assert incident["incidentCommonPriorityNumber"] == 1
    assert incident["incidentPriorityInternalText"] == "merah (P1)"
    assert incident["incidentStatusInternalText"] == ["closed"]
    assert incident["dispositionComponent"] == [
        {"dispositionInternalText": "emergency", "dispositionTimeStamp": "2024-05-01T08:40:00+07:00"}
    ]
    (location,) = parts(doc, "locationComponent")
    assert incident["locationReference"] == [{"$ref": location["$id"]}]
    assert location["locationByValue"] == {
        "civicAddressText": "Jl. Siliwangi No. 5",
        "kelurahan": "Pamulang Barat",
        "kecamatan": "Pamulang",
        "geoPoint": {"latitude": -6.3428, "longitude": 106.7386},
    }
    (note,) = parts(doc, "notesComponent")
    assert note["noteText"] == "Nyeri dada kiri sejak 30 menit"
    (resource,) = parts(doc, "emergencyResourceComponent")
    assert resource["emergencyResourceName"] == "Motor Pamulang 1"
    assert resource["emergencyResourceTypeInternalText"] == "motorbike"
    assert resource["resourceAttributeInternalText"] == ["aed", "bls"]
    assert incident["emergencyResourceReference"] == [{"$ref": resource["$id"]}]
    (agency,) = parts(doc, "agencyComponent")
    assert agency["$id"] == AGENCY and agency["incidentOwningAgencyIndicator"] is True
    timeline = parts(doc, "psc119Timeline")
    assert [row["event"] for row in timeline] == [
        "call_received",
        "unit_dispatched",
        "unit_status.on_scene",
    ]
    assert timeline[0] == {
        "timeStamp": "2024-05-01T08:00:00+07:00",
        "event": "call_received",
        "text": "Panggilan masuk",
    }
    assert timeline[1]["emergencyResourceReference"] == {"$ref": resource["$id"]}


def test_caller_is_left_out_by_default() -> None:
    doc = incident_to_eido(closed_incident(), agency_id=AGENCY, generated_at=T0)
    text = json.dumps(doc)
    assert "personComponent" not in doc
    assert "081234567890" not in text and "Budi" not in text
    with_caller = incident_to_eido(closed_incident(), agency_id=AGENCY, generated_at=T0, include_caller=True)
    assert with_caller["personComponent"] == [
        {
            "$id": f"{TRACKING}:person:caller",
            "personIncidentRoleRegistryText": ["Caller"],
            "callBackNumber": "081234567890",
            "personName": "Budi",
        }
    ]


def test_minimal_open_incident() -> None:
    bare = Incident(IncidentId("inc-7"), Call(phone="119", received_at=T0), Priority.MERAH)
    doc = incident_to_eido(bare, agency_id=AGENCY, generated_at=T0)
    (incident,) = parts(doc, "incidentComponent")
    assert incident["incidentTypeInternalCode"] == "untriaged"
    assert incident["incidentStatusInternalText"] == ["open"]
    for absent in ("locationComponent", "notesComponent", "emergencyResourceComponent", "psc119Timeline"):
        assert absent not in doc
    assert "dispositionComponent" not in incident and "locationReference" not in incident


def test_duplicate_names_the_original() -> None:
    dup = Incident(IncidentId("inc-8"), CALL, Priority.MERAH).close(
        Outcome.DUPLICATE, T0, duplicate_of=IncidentId("inc-42")
    )
    (incident,) = parts(incident_to_eido(dup, agency_id=AGENCY, generated_at=T0), "incidentComponent")
    assert incident["dispositionComponent"][0]["duplicateOfIncidentId"] == "inc-42"


def test_validation() -> None:
    with pytest.raises(InvalidInput) as info:
        incident_to_eido(closed_incident(), agency_id="", generated_at=T0)
    assert info.value.field == "agency_id"
    with pytest.raises(InvalidInput) as info:
        incident_to_eido(closed_incident(), agency_id=AGENCY, generated_at=datetime(2024, 5, 1))
    assert info.value.field == "generated_at"
    with pytest.raises(InvalidInput) as info:
        TimelineEntry(T0, "Unit Dispatched")
    assert info.value.field == "event"
    with pytest.raises(InvalidInput) as info:
        TimelineEntry(T0, "unit_dispatched", UnitId("has space"))
    assert info.value.field == "unit_id"
