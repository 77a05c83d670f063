"""A hospital account reaches only the notices addressed to its own hospital: another hospital's account can neither
read nor act on one, and nothing of it reaches that account's event socket."""

from __future__ import annotations

import asyncpg

from tests.conftest import Api
from tests.server.dispatch_support import Socket
from tests.server.notice_support import HOSPITAL, OTHER, hospital_account, notices, served_incident


async def test_another_hospital_sees_and_touches_nothing_of_the_notice(api: Api, con: asyncpg.Connection) -> None:
    served = await served_incident(api, con)
    owner, stranger = await api.login("hospital"), await hospital_account(api, con, OTHER)
    stranger_desk = await Socket.open(api, "/ws/events", stranger)
    owner_desk = await Socket.open(api, "/ws/events", owner)
    assert (await api.call("POST", f"/api/incidents/{served.incident_id}/destination", served.operator, json={"facility": HOSPITAL}))[0] == 200
    notice_id = (await owner_desk.event("notice.sent", incident_id=served.incident_id))["data"]["notice_id"]
    reply = await served.phone.request({"type": "vitals", "incident_id": served.incident_id, "report_id": "vitals-access-1",
                                        "vitals": {"pulse": 100}})
    assert reply["type"] == "ok"
    await owner_desk.event("incident.vitals", incident_id=served.incident_id)

    assert await notices(api, stranger) == []
    status, _ = await api.call("GET", f"/api/notices?incident={served.incident_id}", stranger)
    assert status == 200 and await notices(api, stranger, served.incident_id) == []
    for action, body in (("acknowledge", None), ("decline", {"reason": "penuh"}), ("handover", None)):
        status, _ = await api.call("POST", f"/api/notices/{notice_id}/{action}", stranger, json=body)
        assert status == 404, action
    for path in (f"/api/incidents/{served.incident_id}/vitals", f"/api/incidents/{served.incident_id}/patient"):
        status, _ = await api.call("POST" if path.endswith("vitals") else "PUT", path, stranger, json={})
        assert status == 403
    status, _ = await api.call("GET", f"/api/incidents/{served.incident_id}/timeline", stranger)
    assert status == 403
    assert await con.fetchval("SELECT status FROM prearrival_notices WHERE id = $1", notice_id) == "sent"

    # The owner acknowledges and records the handover; then a notice to the stranger's own hospital arrives on its socket,
    # and nothing before it on that socket was about the first incident.
    assert (await api.call("POST", f"/api/notices/{notice_id}/acknowledge", owner))[0] == 200
    second = await served_incident(api, con, phone="0812-7777-0000", location={"lat": -6.30, "lon": 106.66})
    assert (await api.call("POST", f"/api/incidents/{second.incident_id}/destination", second.operator, json={"facility": OTHER}))[0] == 200
    await stranger_desk.event("notice.sent", incident_id=second.incident_id)
    seen = [m for m in stranger_desk.messages if m.get("type") == "event"]
    assert all(served.incident_id not in str(m) and m["data"].get("notice_id") != notice_id for m in seen), seen
    assert [n["incident_id"] for n in await notices(api, stranger)] == [second.incident_id]
    # An operator sees both; a crew only its own incident's, and must name it.
    assert {n["incident_id"] for n in await notices(api, served.operator)} >= {served.incident_id, second.incident_id}
    status, _ = await api.call("GET", "/api/notices", served.crew)
    assert status == 404
    status, _ = await api.call("GET", f"/api/notices?incident={second.incident_id}", served.crew)
    assert status == 404
