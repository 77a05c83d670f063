"""Status reports a phone kept while it had no signal: they count at the crew's time (bounded by the unit's
previous change and the server's now), a report that arrives twice counts once, and impossible times or ids
are refused without a change."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import asyncpg

from tests.conftest import Api
from tests.server.dispatch_support import CREW_PASSWORD, Socket, call_body, crew_for


def stamp(at: dt.datetime) -> str:
    return at.isoformat()


async def test_late_reports_count_at_the_crews_time_and_once(api: Api, con: asyncpg.Connection) -> None:
    operator = await api.login("operator")
    status, created = await api.call("POST", "/api/calls", operator, json=call_body())
    assert status == 201, created
    incident_id, unit_id = created["incident"]["id"], created["recommendations"][0]["unit_id"]
    phone = await Socket.open(api, "/ws/unit", await api.login(await crew_for(con, unit_id), CREW_PASSWORD))
    status, body = await api.call("POST", f"/api/incidents/{incident_id}/dispatch", operator, json={"unit_id": unit_id})
    assert status == 201, body
    assignment_id = body["assignment"]["id"]
    dispatched_at = await con.fetchval("SELECT status_since FROM units WHERE id = $1", unit_id)

    # An ack "pressed" before the dispatch existed cannot be: it counts at the dispatch.
    reply = await phone.request({"type": "ack", "assignment_id": assignment_id, "report_id": "ack-" + uuid.uuid4().hex,
                                 "reported_at": stamp(dispatched_at - dt.timedelta(minutes=3))})
    assert (reply["type"], reply["status"]) == ("ok", "en_route"), reply
    assert await con.fetchval("SELECT acknowledged_at FROM assignments WHERE id = $1", assignment_id) == dispatched_at

    # On scene, pressed a moment after the ack but delivered later: the crew's time is kept everywhere.
    await asyncio.sleep(1.0)
    pressed = (await con.fetchval("SELECT now()")) - dt.timedelta(milliseconds=700)
    report = {"type": "status", "status": "on_scene", "assignment_id": assignment_id,
              "report_id": "scene-" + uuid.uuid4().hex, "reported_at": stamp(pressed)}
    reply = await phone.request(report)
    assert (reply["type"], reply["status"], reply["duplicate"]) == ("ok", "on_scene", False), reply
    assert await con.fetchval("SELECT on_scene_at FROM assignments WHERE id = $1", assignment_id) == pressed
    assert await con.fetchval("SELECT first_on_scene_at FROM incidents WHERE id = $1", uuid.UUID(incident_id)) == pressed
    assert await con.fetchval("SELECT status_since FROM units WHERE id = $1", unit_id) == pressed
    logged = await con.fetchrow("SELECT at, received_at FROM unit_status_log WHERE unit_id = $1 AND report_id = $2",
                                unit_id, report["report_id"])
    assert logged["at"] == pressed and logged["received_at"] - pressed >= dt.timedelta(milliseconds=600)
    _, timeline = await api.call("GET", f"/api/incidents/{incident_id}/timeline", operator)
    [entry] = [e for e in timeline["timeline"] if e["status"] == "on_scene"]
    assert dt.datetime.fromisoformat(entry["data"]["reported_at"]) == pressed  # beside the time it was recorded

    # The same report again (the phone never saw the reply): nothing changes, the unit is as it is.
    rows = await con.fetchval("SELECT count(*) FROM unit_status_log WHERE unit_id = $1", unit_id)
    events = await con.fetchval("SELECT count(*) FROM events")
    reply = await phone.request(report)
    assert (reply["type"], reply["status"], reply["duplicate"]) == ("ok", "on_scene", True), reply
    assert await con.fetchval("SELECT count(*) FROM unit_status_log WHERE unit_id = $1", unit_id) == rows
    assert await con.fetchval("SELECT count(*) FROM events") == events

    # Impossible times and ids are refused, naming the field; nothing changes.
    now = await con.fetchval("SELECT now()")
    for bad, field in (
        ({"reported_at": stamp(now + dt.timedelta(hours=1))}, "reported_at"),
        ({"reported_at": stamp(now - dt.timedelta(hours=7))}, "reported_at"),
        ({"reported_at": "2026-11-23T10:00:00"}, "reported_at"),  # no zone
        ({"report_id": "x"}, "report_id"),
        ({"report_id": "bad id with spaces"}, "report_id"),
    ):
        reply = await phone.request({"type": "status", "status": "transporting", "assignment_id": assignment_id, **bad})
        assert (reply["type"], reply["error"]["field"]) == ("error", field), reply
    assert await con.fetchval("SELECT status FROM units WHERE id = $1", unit_id) == "on_scene"
    assert await con.fetchval("SELECT count(*) FROM unit_status_log WHERE unit_id = $1", unit_id) == rows
    await phone.close()
