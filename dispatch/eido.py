"""Export an incident as JSON close to NENA EIDO (NENA-STA-021, "EIDO JSON").

Pure: values in, a JSON-serialisable dict out. Component and field names
follow EIDO where one fits (``incidentComponent``, ``locationComponent``,
``notesComponent``, ``emergencyResourceComponent``, ``agencyComponent``,
``personComponent``; ``$id``/``$ref`` links). EIDO carries locations as
PIDF-LO XML; here ``locationByValue`` is a small JSON object instead (a
geo point plus civic address text), and the timeline goes in an extension
member ``psc119Timeline``: both are the "close to" in the title.

The caller's name and number are patient data and are left out unless
``include_caller`` is set.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from dispatch._checks import check_aware, check_text
from dispatch.errors import InvalidInput
from dispatch.incident import Incident
from dispatch.timeline import TimelineEntry
from dispatch.triage import TriageTable
from dispatch.units import Unit

__all__ = ["EIDO_VERSION", "incident_to_eido"]

EIDO_VERSION = "1.0"

_JsonDict = dict[str, object]


def _ts(moment: datetime) -> str:
    return moment.isoformat()


def incident_to_eido(
    incident: Incident,
    *,
    agency_id: str,
    generated_at: datetime,
    units: Sequence[Unit] = (),
    timeline: Sequence[TimelineEntry] = (),
    table: TriageTable | None = None,
    include_caller: bool = False,
) -> _JsonDict:
    """The EIDO-like document for ``incident``.

    ``agency_id`` names this PSC (a domain such as
    ``psc119.tangerangselatankota.go.id``); ``units`` are the units that
    were assigned; ``timeline`` entries are emitted in time order.
    """
    check_text(agency_id, "agency_id", max_len=255, allow_empty=False)
    check_aware(generated_at, "generated_at")
    if not isinstance(incident, Incident):
        raise InvalidInput("incident", "must be an Incident")
    call = incident.call
    tracking = f"urn:emergency:uid:incidentid:{incident.id}:{agency_id}"
    agency_ref = agency_id
    incident_ref = f"{tracking}:incident"
    location_ref = f"{tracking}:location:0"
    stamp = _ts(generated_at)

    type_code = call.call_type or "untriaged"
    type_text = type_code
    if table is not None and call.call_type is not None and call.call_type in table:
        type_text = table.get(call.call_type).label_en

    has_location = call.location is not None or bool(call.address)
    incident_component: _JsonDict = {
        "$id": incident_ref,
        "lastUpdateTimeStamp": stamp,
        "updatedByAgencyReference": {"$ref": agency_ref},
        "incidentTrackingIdentifier": tracking,
        "internalIncidentId": incident.id,
        "incidentTypeCommonRegistryText": "Medical",
        "incidentTypeInternalCode": type_code,
        "incidentTypeInternalText": type_text,
        "incidentStatusInternalText": [incident.state.value],
        "incidentPriorityInternalText": f"{incident.priority.value} ({incident.priority.code})",
        "incidentCommonPriorityNumber": incident.priority.rank,
        "incidentCreationTimeStamp": _ts(incident.created_at),
    }
    if has_location:
        incident_component["locationReference"] = [{"$ref": location_ref}]
    if incident.outcome is not None and incident.closed_at is not None:
        disposition: _JsonDict = {
            "dispositionInternalText": incident.outcome.value,
            "dispositionTimeStamp": _ts(incident.closed_at),
        }
        if incident.duplicate_of is not None:
            disposition["duplicateOfIncidentId"] = incident.duplicate_of
        incident_component["dispositionComponent"] = [disposition]
    if units:
        incident_component["emergencyResourceReference"] = [
            {"$ref": f"{tracking}:resource:{unit.id}"} for unit in units
        ]

    document: _JsonDict = {
        "$id": tracking,
        "eidoVersion": EIDO_VERSION,
        "lastUpdateTimeStamp": stamp,
        "issuingElementIdentification": agency_id,
        "incidentComponent": [incident_component],
        "agencyComponent": [
            {
                "$id": agency_ref,
                "agencyRoleDescriptionRegistryText": ["CallReceiving", "Dispatching"],
                "agencyType": ["ems"],
                "incidentOwningAgencyIndicator": True,
            }
        ],
    }

    if has_location:
        by_value: _JsonDict = {"civicAddressText": call.address}
        if call.kelurahan:
            by_value["kelurahan"] = call.kelurahan
        if call.kecamatan:
            by_value["kecamatan"] = call.kecamatan
        if call.location is not None:
            by_value["geoPoint"] = {
                "latitude": call.location.lat,
                "longitude": call.location.lon,
            }
        document["locationComponent"] = [
            {
                "$id": location_ref,
                "lastUpdateTimeStamp": _ts(incident.created_at),
                "locationTypeDescriptionRegistryText": "CurrentIncident",
                "locationByValue": by_value,
            }
        ]

    if call.notes:
        document["notesComponent"] = [
            {
                "$id": f"{tracking}:note:0",
                "noteDateTimeStamp": _ts(incident.created_at),
                "noteText": call.notes,
            }
        ]

    if units:
        document["emergencyResourceComponent"] = [
            {
                "$id": f"{tracking}:resource:{unit.id}",
                "emergencyResourceIdentifier": unit.id,
                "emergencyResourceName": unit.callsign,
                "emergencyResourceTypeInternalText": unit.kind.value,
                "resourceAttributeInternalText": sorted(unit.capabilities),
                "unitStatusInternalText": [unit.status.value],
                "agencyReference": {"$ref": agency_ref},
            }
            for unit in units
        ]

    if include_caller:
        person: _JsonDict = {
            "$id": f"{tracking}:person:caller",
            "personIncidentRoleRegistryText": ["Caller"],
            "callBackNumber": call.phone,
        }
        if call.caller_name is not None:
            person["personName"] = call.caller_name
        document["personComponent"] = [person]

    if timeline:
        rows: list[_JsonDict] = []
        for entry in sorted(timeline, key=lambda e: e.at):  # stable: equal times keep their order
            row: _JsonDict = {"timeStamp": _ts(entry.at), "event": entry.event}
            if entry.unit_id is not None:
                row["emergencyResourceReference"] = {"$ref": f"{tracking}:resource:{entry.unit_id}"}
            if entry.text:
                row["text"] = entry.text
            rows.append(row)
        document["psc119Timeline"] = rows
    return document
