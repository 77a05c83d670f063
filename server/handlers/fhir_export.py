"""An incident or a consult as a FHIR R4B Bundle, to read or to send to SATUSEHAT."""

from __future__ import annotations

import datetime as dt

from aiohttp import web
from fhir.resources.R4B.bundle import Bundle

from server import audit, consult_access, incidents, referrals
from server.api_schemas import OBJECT, obj
from server.errors import Conflict
from server.fhir_bundles import Facility, consult_bundle, incident_bundle
from server.handlers.auth import actor_of
from server.keys import CONFIG, POOL, SATUSEHAT, TRIAGE, USER
from server.roles import Role
from server.routing import Routes, json_response
from server.satusehat import Satusehat, identifiers

routes = Routes("fhir")
INCIDENT_READERS = frozenset({Role.OPERATOR, Role.ADMIN})
CONSULT_READERS = frozenset({Role.PUSKESMAS, Role.SPECIALIST, Role.ADMIN})
ADMIN = frozenset({Role.ADMIN})


async def _incident(request: web.Request) -> tuple[str, Bundle]:
    pool = request.app[POOL]
    row = await incidents.get(pool, request.match_info["id"])
    triage = await request.app[TRIAGE].get()
    label = triage.get(row["call_type"]).label_id if row["call_type"] in triage else None
    destination = None
    if row["destination"] is not None:
        found = await pool.fetchrow("SELECT code, name FROM facilities WHERE code = $1", row["destination"])
        destination = Facility(found["code"], found["name"])
    patient = await pool.fetchrow("SELECT age, sex FROM incident_patients WHERE incident_id = $1", row["id"])
    # The crew's columns under the names the vital signs have everywhere else (their LOINC codes: server/fhir_bundles.py).
    vitals = await pool.fetch(
        """SELECT measured_at, systolic AS systolic_bp, diastolic AS diastolic_bp, pulse AS heart_rate, spo2, gcs,
                  resp_rate AS respiratory_rate
           FROM incident_vitals WHERE incident_id = $1 ORDER BY measured_at, id""",
        row["id"],
    )
    bundle = incident_bundle(
        row, ids=identifiers(request.app[CONFIG].satusehat), call_type_label=label, destination=destination,
        age=patient and patient["age"], sex=patient and patient["sex"],
        vitals=[(v["measured_at"], {k: v[k] for k in v.keys() if k != "measured_at"}) for v in vitals], generated_at=dt.datetime.now(dt.UTC),
    )
    return f"incident:{row['id']}", bundle


async def _consult(request: web.Request) -> tuple[str, Bundle]:
    pool = request.app[POOL]
    stored, _ = await consult_access.load_readable(pool, request.match_info["id"], request[USER])
    return f"consult:{stored.id}", consult_bundle(stored, ids=identifiers(request.app[CONFIG].satusehat),
                                                  referral=await referrals.of_consult(pool, stored.id), generated_at=dt.datetime.now(dt.UTC))


async def _read(request: web.Request, target: str, bundle: Bundle, action: str) -> web.Response:
    await audit.record(request.app[POOL], actor_of(request), action, target, {"format": "fhir"})
    return web.Response(text=bundle.model_dump_json(exclude_none=True), content_type="application/fhir+json")


async def _send(request: web.Request, target: str, bundle: Bundle) -> web.Response:
    client: Satusehat | None = request.app[SATUSEHAT]
    if client is None:
        raise Conflict("SATUSEHAT is not configured (satusehat.auth_url)", field="satusehat", code="not_configured")
    pool, actor = request.app[POOL], actor_of(request)
    try:
        response = await client.send(bundle)
    except Exception as exc:
        await audit.record(pool, actor, "satusehat.send", target, {"ok": False, "error": str(exc)[:200]})
        raise
    entries = response.get("entry", []) if isinstance(response, dict) else []
    created = [e.get("response", {}).get("location") for e in entries if isinstance(e, dict)]
    await audit.record(pool, actor, "satusehat.send", target, {"ok": True, "created": created[:50]})
    return json_response({"response": response})


@routes.route("GET", "/api/incidents/{id}/fhir", roles=INCIDENT_READERS, summary="The incident as a FHIR R4B transaction Bundle (SATUSEHAT)", returns={200: OBJECT})
async def incident_fhir(request: web.Request) -> web.Response:
    return await _read(request, *await _incident(request), "incident.export")


@routes.route("GET", "/api/consults/{id}/fhir", roles=CONSULT_READERS, summary="The consult as a FHIR R4B transaction Bundle (SATUSEHAT; its readers)", returns={200: OBJECT})
async def consult_fhir(request: web.Request) -> web.Response:
    return await _read(request, *await _consult(request), "consult.export")


@routes.route("POST", "/api/incidents/{id}/fhir/send", roles=ADMIN, summary="Send the incident's FHIR Bundle to SATUSEHAT", returns={200: obj(response=OBJECT)})
async def send_incident(request: web.Request) -> web.Response:
    return await _send(request, *await _incident(request))


@routes.route("POST", "/api/consults/{id}/fhir/send", roles=ADMIN, summary="Send the consult's FHIR Bundle to SATUSEHAT", returns={200: obj(response=OBJECT)})
async def send_consult(request: web.Request) -> web.Response:
    return await _send(request, *await _consult(request))
