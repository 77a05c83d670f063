"""Every change locks the incident before the unit (and the dispatch): a crew's reports racing an operator's dispatch
attempts, or the acknowledgement sweep, never deadlock (PostgreSQL would abort one of them: a lost report, or a 500)."""

from __future__ import annotations

import asyncio
import dataclasses

import asyncpg

from tests.conftest import Api, app_config, start_api
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



async def test_the_ack_sweep_takes_the_incident_before_the_unit_and_the_dispatch(demo_dsn: str, con: asyncpg.Connection) -> None:
    """A crew's report holds the incident and the unit and then records the acknowledgement on the dispatch, while
    the deadline passes: the sweep waits for the incident (holding nothing), so the report goes through and the
    sweep then finds the dispatch answered."""
    config = app_config(demo_dsn)
    client = await start_api(demo_dsn, dataclasses.replace(config, dispatch=dataclasses.replace(
        config.dispatch, ack_timeout_s=0.2, ack_sweep_s=0.05, auto_dispatch_merah=False)))
    try:
        operator = await client.login("operator")
        status, created = await client.call("POST", "/api/calls", operator, json=call_body(call_type="general_sickness"))
        assert status == 201, created
        incident_id, unit_id = created["incident"]["id"], created["recommendations"][0]["unit_id"]
        status, body = await client.call("POST", f"/api/incidents/{incident_id}/dispatch", operator, json={"unit_id": unit_id})
        assert status == 201, body
        async with con.transaction():
            # This side gives up first if the two wait on each other, so a deadlock fails the test here.
            await con.execute("SET LOCAL deadlock_timeout = '100ms'")
            await con.execute("SELECT 1 FROM incidents WHERE id = $1::uuid FOR UPDATE", incident_id)
            await con.execute("SELECT 1 FROM units WHERE id = $1 FOR UPDATE", unit_id)
            await asyncio.sleep(0.6)  # past the deadline: the sweep comes for this dispatch meanwhile
            await con.execute("UPDATE assignments SET acknowledged_at = now() WHERE id = $1", body["assignment"]["id"])
            await con.execute("UPDATE units SET status = 'en_route' WHERE id = $1", unit_id)
        await asyncio.sleep(0.3)  # the sweep runs again
        assert await con.fetchval("SELECT ended_at IS NULL FROM assignments WHERE id = $1", body["assignment"]["id"])
        assert await con.fetchval("SELECT status FROM units WHERE id = $1", unit_id) == "en_route"
    finally:
        await client.session.close()
        await client.server.close()
