"""FHIR R4B bundles of an incident and of a consult: what they hold, validated by the FHIR models; who may read them."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

import asyncpg
from fhir.resources.R4B.bundle import Bundle

from server.config import SatusehatSettings
from tests.conftest import Api, app_config, start_api
from tests.server.dispatch_support import call_body
from tests.server.test_consults import OUTCOME, PATIENT, accepted_consult, add_users, capi, close_api, request_consult  # noqa: F401 - capi is a fixture

LOINC = "http://loinc.org"


def bundle_of(status: int, text: Any) -> Bundle:
    assert status == 200, text
    bundle = Bundle.model_validate_json(text)  # the FHIR models validate every resource and field
    assert bundle.type == "transaction"
    for entry in bundle.entry:  # each entry is POSTed to its type; references are between urn:uuid entries
        assert entry.fullUrl.startswith("urn:uuid:") and entry.request.method == "POST"
        assert entry.request.url == entry.resource.get_resource_type()
    return bundle


def resources(bundle: Bundle, kind: str) -> list[Any]:
    return [e.resource for e in bundle.entry if e.resource.get_resource_type() == kind]


def references(bundle: Bundle) -> set[str]:
    return {e.fullUrl for e in bundle.entry}


async def test_an_incident_is_an_emergency_encounter_at_the_scene_bound_for_its_hospital(api: Api, con: asyncpg.Connection) -> None:
    operator = await api.login("operator")
    status, created = await api.call("POST", "/api/calls", operator, json=call_body())
    assert status == 201
    incident = created["incident"]
    status, _ = await api.call("POST", f"/api/incidents/{incident['id']}/destination", operator, json={"facility": "rs-premier-bintaro"})
    assert status == 200
    bundle = bundle_of(*await api.call("GET", f"/api/incidents/{incident['id']}/fhir", operator))

    [encounter] = resources(bundle, "Encounter")
    [patient] = resources(bundle, "Patient")
    [scene] = resources(bundle, "Location")
    assert encounter.status == "in-progress" and encounter.class_fhir.code == "EMER"
    assert encounter.identifier[0].value == incident["id"]
    assert encounter.period.start == dt.datetime.fromisoformat(incident["received_at"]) and encounter.period.end is None
    assert encounter.reasonCode[0].text == "nyeri dada sejak 30 menit"
    assert encounter.reasonCode[0].coding[0].code == "chest_pain"
    assert encounter.hospitalization.destination.display == "RS Premier Bintaro"
    assert encounter.hospitalization.destination.identifier.value == "rs-premier-bintaro"
    assert {encounter.subject.reference, encounter.location[0].location.reference} <= references(bundle)
    assert (float(scene.position.latitude), float(scene.position.longitude)) == (incident["location"]["lat"], incident["location"]["lon"])
    # Pseudonymous: the caller's name and number are not the patient's, and appear nowhere.
    assert patient.name is None and patient.telecom is None and patient.gender == "unknown"
    assert "Ibu Sari" not in bundle.model_dump_json() and "0812-3456-7890" not in bundle.model_dump_json()

    # The same record gives the same bundle; closing it finishes the encounter.
    again = bundle_of(*await api.call("GET", f"/api/incidents/{incident['id']}/fhir", operator))
    assert [e.fullUrl for e in again.entry] == [e.fullUrl for e in bundle.entry]
    status, _ = await api.call("POST", f"/api/incidents/{incident['id']}/close", operator, json={"outcome": "information"})
    assert status == 200
    closed = bundle_of(*await api.call("GET", f"/api/incidents/{incident['id']}/fhir", await api.login("admin")))
    [encounter] = resources(closed, "Encounter")
    assert encounter.status == "finished" and encounter.period.end is not None
    exports = await con.fetch(
        "SELECT username, detail FROM audit_log WHERE action = 'incident.export' AND object = $1 ORDER BY id", f"incident:{incident['id']}"
    )
    assert [(e["username"], e["detail"]["format"]) for e in exports] == [("operator", "fhir"), ("operator", "fhir"), ("admin", "fhir")]
    status, _ = await api.call("GET", "/api/incidents/00000000-0000-0000-0000-000000000000/fhir", operator)
    assert status == 404


async def test_the_crew_s_vitals_and_the_patient_s_age_and_sex_are_observations_at_their_times(api: Api) -> None:
    operator = await api.login("operator")
    _, created = await api.call("POST", "/api/calls", operator, json=call_body())
    incident_id = created["incident"]["id"]
    status, _ = await api.call("PUT", f"/api/incidents/{incident_id}/patient", operator, json={"age": 67, "sex": "female"})
    assert status == 200
    now = dt.datetime.now(dt.timezone(dt.timedelta(hours=7))).replace(microsecond=0)  # WIB, as the phone sends it
    sets = [((now - dt.timedelta(minutes=30)).isoformat(), {"systolic": 88, "diastolic": 55, "pulse": 124, "spo2": 89, "gcs": 13, "resp_rate": 28}),
            ((now - dt.timedelta(minutes=15)).isoformat(), {"pulse": 110, "spo2": 94})]
    for n, (at, values) in enumerate(sets):
        status, body = await api.call("POST", f"/api/incidents/{incident_id}/vitals", operator,
                                      json={"idempotency_key": f"vitals-set-{n}", "measured_at": at, **values})
        assert status in (200, 201), body
    bundle = bundle_of(*await api.call("GET", f"/api/incidents/{incident_id}/fhir", operator))

    [patient] = resources(bundle, "Patient")
    assert patient.gender == "female"
    observed = sorted((o.effectiveDateTime, o.code.coding[0].code, float(o.valueQuantity.value))
                      for o in resources(bundle, "Observation") if o.code.coding[0].code != "30525-0")
    loinc = {"systolic": "8480-6", "diastolic": "8462-4", "pulse": "8867-4", "spo2": "59408-5", "gcs": "9269-2", "resp_rate": "9279-1"}
    assert observed == sorted((dt.datetime.fromisoformat(at), loinc[k], float(v)) for at, values in sets for k, v in values.items())
    [age] = [o for o in resources(bundle, "Observation") if o.code.coding[0].code == "30525-0"]
    assert float(age.valueQuantity.value) == 67 and age.valueQuantity.code == "a"


async def test_a_consult_is_a_virtual_encounter_with_its_vitals_assessment_and_referral(capi: Api) -> None:  # noqa: F811
    consult_id, pk, sp = await accepted_consult(capi)
    status, body = await capi.call("POST", f"/api/consults/{consult_id}/complete", sp, json={"outcome": OUTCOME})
    assert status == 200, body
    bundle = bundle_of(*await capi.call("GET", f"/api/consults/{consult_id}/fhir", pk))

    [encounter] = resources(bundle, "Encounter")
    assert encounter.status == "finished" and encounter.class_fhir.code == "VR"
    assert encounter.reasonCode[0].text == PATIENT["chief_complaint"]
    assert [p.individual.display for p in encounter.participant] == [body["consult"]["requester_name"], body["consult"]["specialist_name"]]
    assert encounter.serviceProvider.identifier.value == body["consult"]["facility"]
    [patient] = resources(bundle, "Patient")
    assert patient.gender == "male" and patient.birthDate is None
    observed = {o.code.coding[0].code: float(o.valueQuantity.value) for o in resources(bundle, "Observation")}
    vitals = PATIENT["vitals"]
    assert observed == {
        "30525-0": PATIENT["age"], "8480-6": vitals["systolic_bp"], "8462-4": vitals["diastolic_bp"],
        "8867-4": vitals["heart_rate"], "59408-5": vitals["spo2"],
    }
    assert all(o.subject.reference == encounter.subject.reference and o.encounter.reference in references(bundle)
               for o in resources(bundle, "Observation"))
    [condition] = resources(bundle, "Condition")
    assert condition.code.text == OUTCOME["soap"]["assessment"]
    assert [(c.system, c.code, c.display) for c in condition.code.coding] == [
        ("http://hl7.org/fhir/sid/icd-10", "I21.9", "Infark miokard akut")]
    sent = OUTCOME["referral"]
    [referral] = resources(bundle, "ServiceRequest")
    assert (referral.intent, referral.status, referral.priority) == ("order", "active", "stat")
    _, detail = await capi.call("GET", f"/api/consults/{consult_id}", pk)
    assert referral.identifier[0].value == detail["consult"]["referral"]["id"]
    assert (referral.performer[0].identifier.value, referral.performer[0].display) == (sent["hospital"], "RSU Kota Tangerang Selatan")
    assert referral.reasonCode[0].text == sent["reason"] and referral.reasonReference[0].reference in references(bundle)

    # The hospital declines: the request is revoked.
    status, _ = await capi.call("POST", f"/api/referrals/{referral.identifier[0].value}/decline", await capi.login("hospital"),
                                json={"reason": "ICU penuh"})
    assert status == 200
    [referral] = resources(bundle_of(*await capi.call("GET", f"/api/consults/{consult_id}/fhir", sp)), "ServiceRequest")
    assert referral.status == "revoked"

    # Its readers only: a doctor of another puskesmas and an operator are refused.
    [other] = await add_users(capi.dsn, "pkm-lain", 1, role="puskesmas", facility="pkm-ciputat")
    status, _ = await capi.call("GET", f"/api/consults/{consult_id}/fhir", await capi.login(other, "demo119x"))
    assert status in (403, 404)
    status, _ = await capi.call("GET", f"/api/consults/{consult_id}/fhir", await capi.login("operator"))
    assert status == 403


async def test_configured_satusehat_ids_name_the_organization_and_locations(demo_dsn: str, tmp_path: Path) -> None:
    satusehat = SatusehatSettings(organization_id="10000119", organization_ids=("rs-premier-bintaro=10000456",),
                                  location_ids=("rs-premier-bintaro=abcd-ef01",))
    client = await start_api(demo_dsn, dataclasses.replace(app_config(demo_dsn), satusehat=satusehat))
    try:
        operator = await client.login("operator")
        _, created = await client.call("POST", "/api/calls", operator, json=call_body())
        incident_id = created["incident"]["id"]
        await client.call("POST", f"/api/incidents/{incident_id}/destination", operator, json={"facility": "rs-premier-bintaro"})
        bundle = bundle_of(*await client.call("GET", f"/api/incidents/{incident_id}/fhir", operator))
    finally:
        await close_api(client)
    [encounter] = resources(bundle, "Encounter")
    assert encounter.identifier[0].system == "http://sys-ids.kemkes.go.id/encounter/10000119"
    assert encounter.serviceProvider.reference == "Organization/10000119"
    assert encounter.hospitalization.destination.reference == "Location/abcd-ef01"


async def test_a_puskesmas_without_configured_ids_is_named_by_its_code(capi: Api) -> None:  # noqa: F811
    pk = await capi.login("puskesmas")
    status, body = await request_consult(capi, pk)
    assert status == 201
    bundle = bundle_of(*await capi.call("GET", f"/api/consults/{body['consult']['id']}/fhir", pk))
    [encounter] = resources(bundle, "Encounter")
    assert encounter.status == "planned" and encounter.location is None
    assert encounter.serviceProvider.reference is None and encounter.serviceProvider.identifier.system == "urn:psc119:facility"
    assert not resources(bundle, "Condition") and not resources(bundle, "ServiceRequest")
