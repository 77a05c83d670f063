"""Every change locks the incident before the unit: a crew's reports racing an operator's dispatch attempts on
the same unit and incident never deadlock (PostgreSQL would abort one of them: a lost report, or a 500)."""

from __future__ import annotations

import asyncio

import asyncpg

from tests.conftest import Api
from tests.server.dispatch_support import call_body

ROUNDS = 6
CYCLE = ("en_route", "on_scene", "transporting", "at_hospital")


async def test_reports_and_dispatches_on_one_unit_never_deadlock(api: Api, con: asyncpg.Connection) -> None:
    operator = await api.login("operator")
    status, created = await api.call("POST", "/api/calls", operator, json=call_body(call_type="stroke"))
    assert status == 201, created
    incident_id = created["incident"]["id"]
    unit_id = created["recommendations"][0]["unit_id"]
    answers: list[int] = []

    async def crew(target: str) -> None:
        status, body = await api.call("POST", f"/api/units/{unit_id}/status", operator, json={"status": target})
        assert status == 200, body

    async def operator_again(stop: asyncio.Event) -> None:
        # The unit is busy on this incident, so each attempt is refused; each still locks the incident, then the unit.
        while not stop.is_set():
            status, _ = await api.call("POST", f"/api/incidents/{incident_id}/dispatch", operator,
                                       json={"unit_id": unit_id, "additional": True})
            answers.append(status)

    for _ in range(ROUNDS):
        status, body = await api.call("POST", f"/api/incidents/{incident_id}/dispatch", operator,
                                      json={"unit_id": unit_id, "additional": True})
        assert status == 201, body
        stop = asyncio.Event()
        racers = [asyncio.create_task(operator_again(stop)) for _ in range(3)]
        try:
            for target in CYCLE:
                await crew(target)
        finally:
            stop.set()
            await asyncio.gather(*racers)
        await crew("available")  # free again, for the next round
    assert answers and set(answers) == {409}, sorted(set(answers))
    assert await con.fetchval(
        "SELECT count(*) FROM unit_status_log WHERE unit_id = $1 AND incident_id = $2::uuid AND status = 'at_hospital'",
        unit_id, incident_id) == ROUNDS
