"""Two real server processes on one database behave as one system."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg

from tests.server.dispatch_support import CREW_PASSWORD, Socket, call_body, crew_for
from tests.server.process_support import two_processes


async def test_a_call_taken_on_one_process_reaches_a_phone_on_the_other(demo_dsn: str, con: asyncpg.Connection, tmp_path: Path) -> None:
    async with two_processes(demo_dsn, tmp_path) as (a, b):
        operator = await a.login("operator")
        console = await Socket.open(a, "/ws/operator", operator)
        status, created = await a.call("POST", "/api/calls", operator, json=call_body())
        assert status == 201
        unit_id = created["recommendations"][0]["unit_id"]
        crew = await b.login(await crew_for(con, unit_id), CREW_PASSWORD)
        phone = await Socket.open(b, "/ws/unit", crew)

        # Dispatched on process A, delivered on process B, acknowledged there, seen back on A.
        status, body = await a.call("POST", f"/api/incidents/{created['incident']['id']}/dispatch", operator, json={"unit_id": unit_id})
        assert status == 201
        offer = await phone.event("unit.dispatched", unit_id=unit_id)
        reply = await phone.request({"type": "ack", "assignment_id": offer["data"]["assignment_id"]})
        assert reply["status"] == "en_route"
        await console.event("unit.status", unit_id=unit_id, status="en_route")

        # A GPS fix sent to B moves the unit on A's map and in A's index.
        await phone.ws.send('{"type": "position", "lat": -6.2801, "lon": 106.7102}')
        batch = await console.wait_for(lambda m: m["type"] == "positions" and any(u["id"] == unit_id for u in m["units"]))
        assert [(u["lat"], u["lon"]) for u in batch["units"] if u["id"] == unit_id] == [(-6.2801, 106.7102)]

        # The same unit raced from both processes: the database lets exactly one win.
        status, second = await a.call("POST", "/api/calls", operator, json=call_body(phone="0815000000"))
        status, third = await b.call("POST", "/api/calls", await b.login("operator"), json=call_body(phone="0815000001"))
        free = "amb-psc-2"
        results = await asyncio.gather(
            a.call("POST", f"/api/incidents/{second['incident']['id']}/dispatch", operator, json={"unit_id": free}),
            b.call("POST", f"/api/incidents/{third['incident']['id']}/dispatch", operator, json={"unit_id": free}),
        )
        assert sorted(status for status, _ in results) == [201, 409]
        await phone.close()
        await console.close()
