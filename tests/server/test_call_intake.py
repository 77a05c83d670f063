"""Taking a call ranks the units before its read, to read their phones in the same round trip: a ranking made
while this process's index had not yet heard of a change committed before the call must not be answered."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from server import events
from server.bus import Subscription
from server.events import Event
from server.keys import FLEET
from tests.conftest import Api
from tests.server.dispatch_support import call_body

LAG_S = 0.3


class Lagging:
    """A subscription whose events reach the index ``LAG_S`` late, as on a busy process."""

    def __init__(self, sub: Subscription) -> None:
        self._sub = sub
        self.queue = self
        self.overflowed = sub.overflowed

    async def get(self) -> Event:
        event = await self._sub.queue.get()
        await asyncio.sleep(LAG_S)
        return event

    def empty(self) -> bool:
        return True  # each event comes through `get`, late


async def test_a_unit_sent_just_before_a_call_is_not_recommended_while_the_index_lags(
    api: Api, con: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch,
) -> None:
    operator = await api.login("operator")
    status, first = await api.call("POST", "/api/calls", operator, json=call_body())
    assert status == 201
    unit = first["recommendations"][0]["unit_id"]

    fleet = api.server.app[FLEET]
    monkeypatch.setattr(fleet, "_sub", Lagging(fleet._sub))
    async with con.transaction():  # wakes the index's reader: its next wait is on the lagging queue
        await events.append(con, "test.nudge", {}, ["role:nobody"])
    await con.execute("NOTIFY psc119_events")
    await fleet.current()

    status, _ = await api.call("POST", f"/api/incidents/{first['incident']['id']}/dispatch", operator, json={"unit_id": unit})
    assert status == 201
    assert fleet.index.get(unit).status.value == "available", "the index heard of the dispatch at once; nothing was tested"
    status, second = await api.call("POST", "/api/calls", operator, json=call_body(phone="0857-1111-2222"))
    assert status == 201
    assert unit not in {r["unit_id"] for r in second["recommendations"] + second["transport"]}


async def test_of_calls_taken_at_once_at_one_place_each_pair_has_one_that_names_the_other(api: Api) -> None:
    operator = await api.login("operator")
    scene = {"lat": -6.2931, "lon": 106.7101}
    answers = await asyncio.gather(*(
        api.call("POST", "/api/calls", operator, json=call_body(phone=f"0857-3333-{n:04d}", location=scene)) for n in range(8)
    ))
    assert all(status == 201 for status, _ in answers), answers
    stored = {body["incident"]["id"]: body for _, body in answers}
    named = {
        incident: {w["incident_id"] for w in body["warnings"] if w["kind"] == "duplicate"} for incident, body in stored.items()
    }
    for a in stored:
        for b in stored:
            if a < b:
                assert b in named[a] or a in named[b], (a, b, named)
    # What the answers said is what is stored, for the consoles that read it later.
    for incident, body in stored.items():
        status, read = await api.call("GET", f"/api/incidents/{incident}", operator)
        assert status == 200
        assert {w.get("incident_id") for w in read["incident"]["warnings"]} == {w.get("incident_id") for w in body["warnings"]}
