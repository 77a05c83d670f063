"""Closing an incident withdraws the notice of a hospital still expecting its patient: its page stops ringing."""

from __future__ import annotations

from tests.conftest import Api
from tests.server.dispatch_support import Socket, call_body
from tests.server.notice_support import HOSPITAL, notices


async def test_closing_the_incident_withdraws_the_open_notice(api: Api) -> None:
    operator = await api.login("operator")
    status, created = await api.call("POST", "/api/calls", operator, json=call_body())
    assert status == 201, created
    incident_id = created["incident"]["id"]
    hospital = await api.login("hospital")
    desk = await Socket.open(api, "/ws/events", hospital)
    status, body = await api.call("POST", f"/api/incidents/{incident_id}/destination", operator, json={"facility": HOSPITAL})
    assert status == 200, body
    await desk.event("notice.sent", incident_id=incident_id)

    status, body = await api.call("POST", f"/api/incidents/{incident_id}/close", operator, json={"outcome": "information"})
    assert status == 200, body
    withdrawn = await desk.event("notice.withdrawn", incident_id=incident_id)
    assert withdrawn["data"]["reason"] == "incident_closed" and withdrawn["data"]["notice_status"] == "withdrawn"
    [notice] = await notices(api, hospital)
    assert notice["status"] == "withdrawn" and notice["patient"] is None
    # It cannot be handed over or declined any more.
    status, body = await api.call("POST", f"/api/notices/{notice['id']}/acknowledge", hospital)
    assert status == 409, body
