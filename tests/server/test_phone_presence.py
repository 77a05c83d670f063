"""Whether a unit's phone is connected is known on every server process, and a dead process's phones expire."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from server import phone_presence
from server.config import Config
from tests.conftest import Api, app_config, start_api
from tests.server.dispatch_support import CREW_PASSWORD, Socket, call_body, crew_for
from tests.server.phone_support import pinging
from tests.server.process_support import Remote, Served, cli_env

# Short enough that an expiry fits in a test; the pings below keep a live phone well inside it.
OFFLINE_S = 5.0
PING_S = 1.0


def quick(dsn: str, **dispatch: Any) -> Config:
    config = app_config(dsn)
    return dataclasses.replace(config, dispatch=dataclasses.replace(
        config.dispatch, phone_offline_s=OFFLINE_S, phone_ping_s=PING_S, **dispatch))


async def phone_on_board(api: Api, token: str, unit_id: str) -> dict[str, Any]:
    status, body = await api.call("GET", "/api/units", token)
    assert status == 200, body
    return dict(next(u for u in body["units"] if u["id"] == unit_id)["phone"])


async def eventually(check: Any, timeout: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        assert loop.time() < deadline, "never happened"
        await asyncio.sleep(0.1)


async def test_a_phone_connected_to_one_process_shows_on_the_other_and_expires_when_that_process_dies(
    demo_dsn: str, con: asyncpg.Connection, tmp_path: Path,
) -> None:
    env = cli_env(demo_dsn) | {"PSC119_DISPATCH_PHONE_OFFLINE_S": str(OFFLINE_S), "PSC119_DISPATCH_PHONE_PING_S": str(PING_S)}
    a_proc = await Served.start(["serve", "--port", "0"], env, tmp_path / "a.log")
    b_proc = await Served.start(["serve", "--port", "0"], env, tmp_path / "b.log")
    session = aiohttp.ClientSession()
    try:
        a = Remote(None, session, demo_dsn, base=a_proc.url)  # type: ignore[arg-type]
        b = Remote(None, session, demo_dsn, base=b_proc.url)  # type: ignore[arg-type]
        operator = await b.login("operator")
        console = await Socket.open(b, "/ws/operator", operator)
        status, created = await b.call("POST", "/api/calls", operator, json=call_body())
        assert status == 201, created
        unit_id = created["recommendations"][0]["unit_id"]
        assert created["recommendations"][0]["phone"] == {"connected": False, "last_seen": None}
        crew = await a.login(await crew_for(con, unit_id), CREW_PASSWORD)

        # Connected on A: B's board, B's recommendations and B's console all say so.
        phone = await Socket.open(a, "/ws/unit", crew)
        async with pinging(phone, PING_S / 2):
            seen = await console.event("unit.phone", unit_id=unit_id)
            assert seen["data"]["phone"]["connected"] is True and seen["data"]["unit"]["phone"]["connected"] is True
            assert (await phone_on_board(b, operator, unit_id))["connected"] is True
            status, state = await b.call("GET", f"/api/incidents/{created['incident']['id']}/recommendations", operator)
            assert next(r for r in state["recommendations"] if r["unit_id"] == unit_id)["phone"]["connected"] is True
            # Still connected after several expiries: the pings keep it so.
            await asyncio.sleep(OFFLINE_S * 1.5)
            assert (await phone_on_board(b, operator, unit_id))["connected"] is True
            await phone.close()
        # A clean close on A: B sees it at once, with the time it was last heard from.
        gone = await console.event("unit.phone", unit_id=unit_id)
        assert gone["data"]["phone"]["connected"] is False and gone["data"]["phone"]["last_seen"] is not None
        assert (await phone_on_board(b, operator, unit_id))["connected"] is False

        # A phone whose link died silently: its socket stays open on A, but nothing comes from it. Both
        # processes sweep; one of them announces it gone, once.
        silent = await Socket.open(a, "/ws/unit", crew)
        await console.event("unit.phone", unit_id=unit_id)
        quiet = await console.event("unit.phone", unit_id=unit_id, timeout=OFFLINE_S * 4)
        assert quiet["data"]["phone"]["connected"] is False
        await asyncio.sleep(OFFLINE_S)  # more sweeps, on both processes
        assert await con.fetchval(
            "SELECT count(*) FROM events WHERE type = 'unit.phone' AND payload->>'unit_id' = $1 AND id > $2", unit_id, quiet["id"]) == 0
        # It is heard from again: connected again.
        await silent.ws.send(json.dumps({"type": "ping"}))
        again = await console.event("unit.phone", unit_id=unit_id)
        assert again["data"]["phone"]["connected"] is True
        await silent.close()
        await console.event("unit.phone", unit_id=unit_id)

        # Connected on A again, then A is killed: no close is ever recorded, and B still learns the phone is gone.
        phone = await Socket.open(a, "/ws/unit", crew)
        async with pinging(phone, PING_S / 2):
            await console.event("unit.phone", unit_id=unit_id)
            assert (await phone_on_board(b, operator, unit_id))["connected"] is True
            await a_proc.kill()
        expired = await console.event("unit.phone", unit_id=unit_id, timeout=OFFLINE_S * 4)
        assert expired["data"]["phone"]["connected"] is False
        assert (await phone_on_board(b, operator, unit_id))["connected"] is False
        assert await con.fetchval("SELECT count(*) FROM phone_sockets WHERE unit_id = $1 AND closed_at IS NULL", unit_id) == 0

        # Dispatching that unit now: sent, with a warning that its phone will not ring.
        status, sent = await b.call("POST", f"/api/incidents/{created['incident']['id']}/dispatch", operator, json={"unit_id": unit_id})
        assert status == 201, sent
        assert [w["code"] for w in sent["warnings"]] == ["phone_offline"]
        assert sent["warnings"][0]["unit_id"] == unit_id and sent["warnings"][0]["last_seen"] is not None
        await console.close()
        await b_proc.terminate()
    finally:
        await session.close()
        for proc in (a_proc, b_proc):
            await proc.kill()


async def test_dispatching_a_unit_whose_phone_is_offline_warns_and_a_connected_one_does_not(
    demo_dsn: str, con: asyncpg.Connection,
) -> None:
    api = await start_api(demo_dsn, quick(demo_dsn))
    try:
        operator = await api.login("operator")
        status, first = await api.call("POST", "/api/calls", operator, json=call_body())
        status, second = await api.call("POST", "/api/calls", operator, json=call_body(phone="0815000002", address="Jl. Lain 2"))
        online, offline = first["recommendations"][0]["unit_id"], first["recommendations"][1]["unit_id"]
        phone = await Socket.open(api, "/ws/unit", await api.login(await crew_for(con, online), CREW_PASSWORD))
        async with pinging(phone, PING_S / 2):
            status, state = await api.call("GET", f"/api/incidents/{first['incident']['id']}/recommendations", operator)
            phones = {r["unit_id"]: r["phone"]["connected"] for r in state["recommendations"]}
            assert phones[online] is True and phones[offline] is False
            # The carriers' tier says it too (chest pain needs transport).
            assert state["transport"] and all(r["phone"] == {"connected": r["unit_id"] == online, "last_seen": r["phone"]["last_seen"]}
                                              for r in state["transport"])

            status, sent = await api.call("POST", f"/api/incidents/{first['incident']['id']}/dispatch", operator, json={"unit_id": online})
            assert status == 201 and sent["warnings"] == []
            status, sent = await api.call("POST", f"/api/incidents/{second['incident']['id']}/dispatch", operator, json={"unit_id": offline})
            assert status == 201, sent
            assert sent["warnings"] == [{"code": "phone_offline", "unit_id": offline, "last_seen": None,
                                         "message": "the unit's phone is offline: reach the crew by radio"}]
            # The unit is sent all the same: the warning changes nothing but what the operator does next.
            assert await con.fetchval("SELECT status FROM units WHERE id = $1", offline) == "dispatched"
        await phone.close()
    finally:
        await api.session.close()
        await api.server.close()


async def test_a_phone_back_after_its_dispatch_was_withdrawn_is_told_what_it_missed(demo_dsn: str, con: asyncpg.Connection) -> None:
    api = await start_api(demo_dsn, quick(demo_dsn, ack_timeout_s=1.0, ack_sweep_s=0.1))
    try:
        operator = await api.login("operator")
        status, created = await api.call("POST", "/api/calls", operator, json=call_body(address="Jl. Terlewat 7"))
        ranked = [r["unit_id"] for r in created["recommendations"]]
        crew = await api.login(await crew_for(con, ranked[0]), CREW_PASSWORD)
        phone = await Socket.open(api, "/ws/unit", crew)
        resume = phone.messages.pop(0)["last_event_id"]
        await phone.close()

        # Away: the dispatch rings nowhere, is withdrawn for no answer and offered to the next unit.
        status, sent = await api.call("POST", f"/api/incidents/{created['incident']['id']}/dispatch", operator, json={"unit_id": ranked[0]})
        assignment_id = sent["assignment"]["id"]

        async def withdrawn() -> bool:
            return await con.fetchval("SELECT end_reason FROM assignments WHERE id = $1", assignment_id) == "not_responding"

        await eventually(withdrawn)
        went_to = await con.fetchval(
            """SELECT u.callsign FROM assignments a JOIN units u ON u.id = a.unit_id
               WHERE a.incident_id = $1::uuid AND a.id > $2 ORDER BY a.id LIMIT 1""",
            created["incident"]["id"], assignment_id,
        )
        assert went_to is not None

        back = await Socket.open(api, "/ws/unit", crew, after=resume)
        hello = back.messages.pop(0)
        assert hello["dispatch"] is None
        [missed] = hello["missed"]
        assert missed["assignment_id"] == assignment_id and missed["reason"] == "not_responding"
        assert missed["incident"]["address"] == "Jl. Terlewat 7" and missed["went_to"] == went_to
        assert "caller_phone" not in missed["incident"] and "caller_name" not in missed["incident"]
        assert missed["offered_at"] < missed["withdrawn_at"]
        assert await con.fetchval(
            "SELECT count(*) FROM audit_log WHERE action = 'incident.read' AND object = $1 AND detail->>'via' = 'missed dispatch'",
            f"incident:{created['incident']['id']}",
        ) == 1
        # The events come replayed after the hello; a phone that saw them has nothing missed to be told again.
        seen = await back.event("dispatch.withdrawn", unit_id=ranked[0])
        await back.close()
        again = await Socket.open(api, "/ws/unit", crew, after=seen["id"])
        assert again.messages.pop(0)["missed"] == []
        await again.close()
    finally:
        await api.session.close()
        await api.server.close()


async def test_a_units_presence_is_read_from_its_own_rows_however_many_other_phones_are_open(con: asyncpg.Connection) -> None:
    # A new database's table, never analyzed: a read that could take the index of every open socket did, and each
    # phone connecting read all the others' rows.
    units = [r["id"] for r in await con.fetch("SELECT id FROM units ORDER BY id")]
    mine, others = units[0], units[1:]
    await con.execute(
        "INSERT INTO phone_sockets (id, unit_id) SELECT gen_random_uuid(), u FROM unnest($1::text[]) AS u, generate_series(1, 40)", others,
    )
    await con.execute("INSERT INTO phone_sockets (id, unit_id) VALUES (gen_random_uuid(), $1)", mine)
    plans: list[dict[str, Any]] = []

    class Explaining:
        async def fetch(self, query: str, *args: object) -> list[asyncpg.Record]:
            plans.append((await con.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {query}", *args))[0]["Plan"])
            return await con.fetch(query, *args)

    found = await phone_presence.phones(Explaining(), [mine], OFFLINE_S)  # type: ignore[arg-type]
    assert found[mine]["connected"] is True
    assert len(others) * 40 > 100
    assert max(_rows_read(plans[0])) == 1


def _rows_read(node: dict[str, Any]) -> list[int]:
    """The rows each scan of a plan read (returned or filtered out), its own and its subplans'."""
    own = [node["Actual Rows"] + node.get("Rows Removed by Filter", 0)] if "Scan" in node["Node Type"] else []
    return own + [n for child in node.get("Plans", []) for n in _rows_read(child)]
