"""FHIR R4B bundles of an incident and of a consult, for SATUSEHAT (Indonesia's health data exchange).

Pure: records in, a ``fhir.resources`` Bundle out, so every resource is validated by the
library's models as it is built. A bundle is a ``transaction`` SATUSEHAT can take as it
is: each resource is an entry with a ``urn:uuid`` full URL, POSTed to its type, and the
resources refer to one another by those URLs. The uuids derive from the record's id
(uuid5), so exporting the same record twice gives the same bundle.

The patient is pseudonymous: psc119 collects no NIK (a consult deliberately carries no
name or national id; a 119 call only the caller's name and number, who is often not the
patient), so the Patient holds a stable identifier in psc119's own system, the sex when
it is known and nothing else; the age is an Observation (LOINC 30525-0).

Facilities are referred to by their SATUSEHAT Organization ids when the configuration
gives them (``satusehat.organization_ids``), else by psc119's facility code as an
identifier; the Encounter's identifier is in SATUSEHAT's per-organization system.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from fhir.resources.R4B.bundle import Bundle, BundleEntry
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.encounter import Encounter
from fhir.resources.R4B.location import Location
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.resource import Resource
from fhir.resources.R4B.servicerequest import ServiceRequest

from server.consults import Stored
from signaling.icd10 import COMMON

__all__ = ["Identifiers", "LOINC_VITALS", "consult_bundle", "incident_bundle"]

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
SNOMED = "http://snomed.info/sct"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
KEMKES_IDS = "http://sys-ids.kemkes.go.id"
# psc119's own identifier systems, for what has no SATUSEHAT id.
PSC119 = "urn:psc119"
_NAMESPACE = uuid.UUID("5b1c6a52-7e2f-4c1e-9a43-0c119f0c0119")

# vital sign -> (LOINC code, display, UCUM unit)
LOINC_VITALS: Mapping[str, tuple[str, str, str]] = {
    "systolic_bp": ("8480-6", "Systolic blood pressure", "mm[Hg]"),
    "diastolic_bp": ("8462-4", "Diastolic blood pressure", "mm[Hg]"),
    "heart_rate": ("8867-4", "Heart rate", "/min"),
    "respiratory_rate": ("9279-1", "Respiratory rate", "/min"),
    "temperature_c": ("8310-5", "Body temperature", "Cel"),
    "spo2": ("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry", "%"),
    "gcs": ("9269-2", "Glasgow coma score total", "{score}"),
}
AGE = ("30525-0", "Age", "a")
# An incident's status, a consult's state -> Encounter.status
_INCIDENT_STATUS = {"closed": "finished"}
_CONSULT_STATUS = {"requested": "planned", "accepted": "arrived", "in_session": "in-progress",
                   "completed": "finished", "cancelled": "cancelled", "expired": "cancelled"}
_SEX = {"male": "male", "female": "female"}
# A referral's state, its urgency -> ServiceRequest.status, .priority
_REFERRAL_STATUS = {"requested": "active", "accepted": "active", "declined": "revoked"}
_PRIORITY = {"emergency": "stat", "urgent": "urgent", "routine": "routine"}


@dataclasses.dataclass(frozen=True, slots=True)
class Identifiers:
    """SATUSEHAT ids from the configuration: psc119's own Organization, and facilities' Organizations and Locations."""

    organization_id: str = ""
    organizations: Mapping[str, str] = dataclasses.field(default_factory=dict)  # facility code -> Organization id
    locations: Mapping[str, str] = dataclasses.field(default_factory=dict)  # facility code -> Location id


@dataclasses.dataclass(frozen=True, slots=True)
class Facility:
    code: str
    name: str


class _Builder:
    """The entries of one bundle, each resource with a uuid derived from the record and its role in it."""

    def __init__(self, record: str, ids: Identifiers) -> None:
        self.record = record
        self.ids = ids
        self.entries: list[BundleEntry] = []

    def url(self, role: str) -> str:
        return f"urn:uuid:{uuid.uuid5(_NAMESPACE, f'{self.record}/{role}')}"

    def add(self, role: str, kind: type[Resource], fields: dict[str, Any]) -> dict[str, str]:
        """Validate one resource into the bundle; a reference to it for the others."""
        url = self.url(role)
        resource = kind.model_validate(fields)
        self.entries.append(BundleEntry.model_validate(
            {"fullUrl": url, "resource": resource, "request": {"method": "POST", "url": resource.get_resource_type()}}
        ))
        return {"reference": url}

    def facility(self, facility: Facility) -> dict[str, Any]:
        found = self.ids.organizations.get(facility.code)
        if found:
            return {"reference": f"Organization/{found}", "display": facility.name}
        return {"identifier": {"system": f"{PSC119}:facility", "value": facility.code}, "display": facility.name}

    def place(self, facility: Facility) -> dict[str, Any] | None:
        """The facility's SATUSEHAT Location, when the configuration names one."""
        found = self.ids.locations.get(facility.code)
        return {"reference": f"Location/{found}", "display": facility.name} if found else None

    def patient(self, sex: str | None) -> dict[str, str]:
        return self.add("patient", Patient, dict(
            identifier=[{"system": f"{PSC119}:patient", "value": self.url("patient").removeprefix("urn:uuid:")}],
            gender=_SEX.get(sex or "", "unknown"),
        ))

    def encounter(self, identifier: str, **fields: Any) -> dict[str, str]:
        system = f"{KEMKES_IDS}/encounter/{self.ids.organization_id}" if self.ids.organization_id else f"{PSC119}:encounter"
        return self.add("encounter", Encounter, dict(identifier=[{"system": system, "value": identifier}], **fields))

    def observation(self, role: str, code: tuple[str, str, str], value: float, at: dt.datetime,
                    subject: dict[str, str], encounter: dict[str, str], vital: bool = True) -> None:
        loinc, display, unit = code
        self.add(role, Observation, dict(
            status="final",
            category=[{"coding": [{"system": OBSERVATION_CATEGORY, "code": "vital-signs" if vital else "exam"}]}],
            code={"coding": [{"system": LOINC, "code": loinc, "display": display}], "text": display},
            subject=subject, encounter=encounter, effectiveDateTime=at,
            valueQuantity={"value": value, "unit": unit, "system": UCUM, "code": unit},
        ))

    def vitals(self, prefix: str, vitals: Mapping[str, Any], at: dt.datetime,
               subject: dict[str, str], encounter: dict[str, str]) -> None:
        for name, value in vitals.items():
            if name in LOINC_VITALS and value is not None:
                self.observation(f"{prefix}/{name}", LOINC_VITALS[name], value, at, subject, encounter)

    def bundle(self, at: dt.datetime) -> Bundle:
        return Bundle.model_validate({"type": "transaction", "timestamp": at, "entry": self.entries})


def _period(start: dt.datetime, end: dt.datetime | None) -> dict[str, dt.datetime]:
    return {"start": start, **({"end": end} if end is not None else {})}


def incident_bundle(
    incident: Mapping[str, Any], *, ids: Identifiers, call_type_label: str | None, destination: Facility | None,
    age: int | None = None, sex: str | None = None, vitals: Iterable[tuple[dt.datetime, Mapping[str, Any]]] = (),
    generated_at: dt.datetime,
) -> Bundle:
    """A 119 call's emergency encounter: the scene, the destination hospital, the complaint, the patient's age and sex
    as the operator or crew learnt them, and each set of vitals the crew took, at the time it was measured."""
    b = _Builder(f"incident/{incident['id']}", ids)
    patient = b.patient(sex)
    scene: dict[str, Any] = {"name": incident["address"] or incident["kelurahan"] or "119", "mode": "instance"}
    if incident["lat"] is not None:
        scene["position"] = {"latitude": incident["lat"], "longitude": incident["lon"]}
    location = b.add("scene", Location, dict(status="active", **scene))
    reason: dict[str, Any] = {"text": incident["complaint"] or call_type_label or "119"}
    if incident["call_type"]:
        reason["coding"] = [{"system": f"{PSC119}:call-type", "code": incident["call_type"], "display": call_type_label}]
    encounter = b.encounter(
        str(incident["id"]),
        status=_INCIDENT_STATUS.get(incident["status"], "in-progress"),
        class_fhir={"system": ACT_CODE, "code": "EMER", "display": "emergency"},
        subject=patient, period=_period(incident["received_at"], incident["closed_at"]),
        reasonCode=[reason], location=[{"location": location}],
        priority={"coding": [{"system": f"{PSC119}:priority", "code": incident["priority"]}]},
        **({"serviceProvider": {"reference": f"Organization/{ids.organization_id}"}} if ids.organization_id else {}),
        **({"hospitalization": {"destination": b.place(destination) or b.facility(destination)}} if destination is not None else {}),
    )
    if age is not None:
        b.observation("age", AGE, age, incident["received_at"], patient, encounter, vital=False)
    for n, (at, taken) in enumerate(vitals):
        b.vitals(f"vitals/{n}", taken, at, patient, encounter)
    return b.bundle(generated_at)


def consult_bundle(
    stored: Stored, *, ids: Identifiers, referral: Mapping[str, Any] | None = None, generated_at: dt.datetime,
) -> Bundle:
    """A teleconsult's virtual encounter: the puskesmas, the two doctors, the patient's summary and the outcome;
    ``referral`` is the referral's status as stored (server/referrals.py), when the outcome sent one."""
    c = stored.consult
    b = _Builder(f"consult/{c.id}", ids)
    patient = b.patient(c.patient.sex.value)
    participants = [{"individual": {"identifier": {"system": f"{PSC119}:user", "value": str(c.requester)},
                                    "display": stored.names.get("requester") or str(c.requester)}}]
    if c.specialist is not None:
        participants.append({"individual": {"identifier": {"system": f"{PSC119}:user", "value": str(c.specialist)},
                                            "display": stored.names.get("specialist") or str(c.specialist)}})
    puskesmas = Facility(stored.facility, stored.names.get("facility") or stored.facility)
    place = b.place(puskesmas)
    encounter = b.encounter(
        c.id,
        status=_CONSULT_STATUS[c.state.value],
        class_fhir={"system": ACT_CODE, "code": "VR", "display": "virtual"},
        subject=patient, participant=participants,
        period=_period(c.started_at or c.requested_at, c.ended_at),
        reasonCode=[{"text": c.patient.chief_complaint}],
        serviceProvider=b.facility(puskesmas), **({"location": [{"location": place}]} if place else {}),
        priority={"coding": [{"system": f"{PSC119}:urgency", "code": c.urgency.value}]},
    )
    b.observation("age", AGE, c.patient.age, c.requested_at, patient, encounter, vital=False)
    if c.patient.vitals is not None:
        b.vitals("vitals", c.patient.vitals.to_dict(), c.requested_at, patient, encounter)
    if c.outcome is None:
        return b.bundle(generated_at)
    soap, sent = c.outcome.soap, c.outcome.referral
    diagnosis: dict[str, Any] = {"text": soap.assessment}
    if sent is not None:
        diagnosis["coding"] = [{"system": ICD10, "code": sent.icd10, "display": COMMON.get(sent.icd10, (None,))[0]}]
    condition = b.add("assessment", Condition, dict(
        category=[{"coding": [{"system": CONDITION_CATEGORY, "code": "encounter-diagnosis"}]}],
        code=diagnosis, subject=patient, encounter=encounter,
        recordedDate=c.ended_at, note=[{"text": f"S: {soap.subjective}\nO: {soap.objective}\nP: {soap.plan}"}],
    ))
    request: dict[str, Any] = dict(
        intent="order", subject=patient, encounter=encounter, authoredOn=c.ended_at, reasonReference=[condition],
        code={"coding": [{"system": SNOMED, "code": "3457005", "display": "Patient referral"}], "text": "Rujukan"},
    )
    if sent is not None:
        hospital = Facility(sent.hospital, (referral or {}).get("hospital_name") or sent.hospital)
        needs = [f"layanan: {sent.service}"] if sent.service else []
        b.add("referral", ServiceRequest, dict(
            request, status=_REFERRAL_STATUS[(referral or {}).get("state", "requested")], priority=_PRIORITY[sent.urgency.value],
            performer=[b.facility(hospital)], reasonCode=[{"text": sent.reason}],
            note=[{"text": "; ".join([*needs, "transport PSC 119" if sent.transport else "tanpa transport PSC 119"])}],
            **({"identifier": [{"system": f"{PSC119}:referral", "value": referral["id"]}]} if referral else {}),
        ))
    elif c.outcome.refer_to is not None:  # a consult completed before referrals were requests: the hospital's name only
        b.add("referral", ServiceRequest, dict(request, status="unknown", performer=[{"display": c.outcome.refer_to}]))
    return b.bundle(generated_at)
