"""Helpers for the pre-arrival notice tests: an incident served by a unit whose phone is connected, and hospital accounts."""

from __future__ import annotations

import dataclasses
from typing import Any

import asyncpg

from server import audit, users
from server.passwords import Passwords
from tests.conftest import TEST_AUTH, Api
from tests.server.dispatch_support import CREW_PASSWORD, Socket, call_body, crew_for

HOSPITAL = "rs-rsu-kota-tangsel"  # the demo hospital account's
OTHER = "rs-eka-hospital-bsd"
THIRD = "rs-medika-bsd"
HOSPITAL_PASSWORD = "igd-pass-119"


@dataclasses.dataclass
class Served:
    incident_id: str
    unit_id: str
    assignment_id: int
    operator: str
    crew: str
    phone: Socket


async def served_incident(api: Api, con: asyncpg.Connection, **call: Any) -> Served:
    """A chest-pain call with its nearest unit dispatched and acknowledged by the crew's phone."""
    operator = await api.login("operator")
    status, created = await api.call("POST", "/api/calls", operator, json=call_body(**call))
    assert status == 201, created
    incident_id = created["incident"]["id"]
    unit_id = created["recommendations"][0]["unit_id"]
    crew = await api.login(await crew_for(con, unit_id), CREW_PASSWORD)
    phone = await Socket.open(api, "/ws/unit", crew)
    status, body = await api.call("POST", f"/api/incidents/{incident_id}/dispatch", operator, json={"unit_id": unit_id})
    assert status == 201, body
    assignment_id = body["assignment"]["id"]
    reply = await phone.request({"type": "ack", "assignment_id": assignment_id})
    assert reply["type"] == "ok", reply
    return Served(incident_id, unit_id, assignment_id, operator, crew, phone)


async def hospital_account(api: Api, con: asyncpg.Connection, facility: str) -> str:
    """A signed-in hospital account bound to ``facility``; its token."""
    username = f"igd-{facility}"
    if not await con.fetchval("SELECT 1 FROM users WHERE username = $1", username):
        await users.add_user(con, Passwords(TEST_AUTH), actor=audit.CLI, username=username, role="hospital",
                             password=HOSPITAL_PASSWORD, min_password_length=8, facility=facility)
    return await api.login(username, HOSPITAL_PASSWORD)


async def notices(api: Api, token: str, incident_id: str | None = None) -> list[dict[str, Any]]:
    status, body = await api.call("GET", "/api/notices" + (f"?incident={incident_id}" if incident_id else ""), token)
    assert status == 200, body
    return list(body["notices"])
