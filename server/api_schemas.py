"""JSON Schemas of what the API answers on success, declared on each route for the OpenAPI document.

They name the keys a client can rely on and their JSON types; objects stay open
(a new key is not a breaking change). `FILE` marks a route that answers a file.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

STRING: Schema = {"type": "string"}
INTEGER: Schema = {"type": "integer"}
NUMBER: Schema = {"type": "number"}
BOOLEAN: Schema = {"type": "boolean"}
OBJECT: Schema = {"type": "object"}
ANY: Schema = {}
FILE: Schema = {"type": "string", "format": "binary", "x-file": True}


def nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def array(items: Schema = OBJECT) -> Schema:
    return {"type": "array", "items": items}


def obj(**properties: Schema) -> Schema:
    """An object holding at least these keys."""
    return {"type": "object", "properties": properties, "required": list(properties)}


TIME = {"type": "string", "format": "date-time"}
ACCOUNT = obj(id=INTEGER, username=STRING, role=STRING)
UNIT = obj(id=STRING, callsign=STRING, kind=STRING, capabilities=array(STRING), no_fix=BOOLEAN)
INCIDENT = obj(id=STRING, priority=STRING, received_at=TIME, location=nullable(obj(lat=NUMBER, lon=NUMBER)), needs=array(STRING))
# One proposed unit; a call's answer has two tiers of them: first responders and carriers.
# Whether the unit's phone is connected now (on any server process), and when it was last heard from.
PHONE = obj(connected=BOOLEAN, last_seen=nullable(TIME))
RECOMMENDATION = obj(unit_id=STRING, callsign=STRING, kind=STRING, eta_s=NUMBER, stale=BOOLEAN, no_fix=BOOLEAN,
                     capabilities=array(STRING), phone=PHONE)
TIERS: dict[str, Schema] = {"recommendations": array(RECOMMENDATION), "transport": array(RECOMMENDATION)}
CONSULT = obj(id=STRING, state=STRING, patient=OBJECT, requested_at=TIME, overdue=BOOLEAN)
ASSIGNMENT = obj(id=INTEGER, incident_id=STRING, unit_id=STRING)
UNIT_STATUS = obj(unit_id=STRING, status=STRING)
ON_CALL = obj(on_call=array())
CALL_TAKEN = obj(incident=INCIDENT, warnings=array(ANY), **TIERS, created=BOOLEAN, auto_dispatched=nullable(OBJECT),
                 auto_dispatched_transport=nullable(OBJECT))
# What a console needs to dispatch against: the version it sends back as expected_version.
DISPATCH_STATE = obj(assignment_version=INTEGER, serving=array(STRING), **TIERS)
# A refused dispatch: stale and already_assigned carry DISPATCH_STATE's keys (and unit_id, the unit already sent).
DISPATCH_REFUSED: Schema = {
    "type": "object",
    "properties": {"error": OBJECT, **DISPATCH_STATE["properties"], "unit_id": STRING},
    "required": ["error"],
}
