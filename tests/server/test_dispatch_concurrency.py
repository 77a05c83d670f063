"""Real concurrency: many operators, many calls, two app instances on one database."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg

from server.passwords import Passwords
from tests.conftest import TEST_AUTH, Api, start_api
from tests.server.dispatch_support import call_body


async def _operators(con: asyncpg.Connection, count: int) -> list[str]:
    hashed = Passwords(TEST_AUTH).hash_sync("operator-pass")
    names = [f"op{n:02d}" for n in range(count)]
    await con.executemany(
        "INSERT INTO users (username, role, password_hash) VALUES ($1, 'operator', $2)", [(n, hashed) for n in names]
    )
    return names


async def test_fifty_operators_race_for_one_unit_exactly_one_wins(api: Api, con: asyncpg.Connection) -> None:
    second = await start_api(api.dsn)  # a second server instance on the same database
    try:
        names = await _operators(con, 50)
        # Signed in one after another: fifty logins at once would meet the login limits, not the race under test.
        tokens = [await (api if n % 2 else second).login(name, "operator-pass") for n, name in enumerate(names)]
        # Fifty calls, one per operator, all wanting the same unit.
        created = await asyncio.gather(*(
            api.call("POST", "/api/calls", token, json=call_body(phone=f"08111{n:05d}")) for n, token in enumerate(tokens)
        ))
        assert [status for status, _ in created] == [201] * 50
        incident_ids = [body["incident"]["id"] for _, body in created]
        unit_id = "amb-psc-1"
        results = await asyncio.gather(*(
            (api if n % 2 else second).call("POST", f"/api/incidents/{incident_ids[n]}/dispatch", token, json={"unit_id": unit_id})
            for n, token in enumerate(tokens)
        ))
        statuses = sorted(status for status, _ in results)
        assert statuses == [201] + [409] * 49
        for status, body in results:
            if status == 409:
                assert body["error"]["field"] == "unit_id"
                assert body["recommendations"] and all(r["unit_id"] != unit_id for r in body["recommendations"])
        assert await con.fetchval("SELECT count(*) FROM assignments WHERE unit_id = $1", unit_id) == 1
        assert await con.fetchval("SELECT status FROM units WHERE id = $1", unit_id) == "dispatched"
        assert await con.fetchval("SELECT count(*) FROM events WHERE type = 'unit.dispatched'") == 1
    finally:
        await second.session.close()
        await second.server.close()


async def test_two_hundred_concurrent_calls_are_all_recorded_once_and_answered(api: Api, con: asyncpg.Connection) -> None:
    token = await api.login("operator")
    bodies = [call_body(phone=f"0813{n:08d}", location={"lat": -6.24 - (n % 20) * 0.005, "lon": 106.64 + (n // 20) * 0.012})
              for n in range(200)]
    # Every call is sent twice at once, as a client retrying on a timeout would: still one incident each.
    requests = [api.call("POST", "/api/calls", token, json=b) for b in bodies for _ in range(2)]
    results = await asyncio.gather(*requests)
    assert all(status in (200, 201) for status, _ in results), [r for r in results if r[0] not in (200, 201)][:3]
    assert sum(1 for status, _ in results if status == 201) == 200
    by_key: dict[str, set[str]] = {}
    for (_status, body), request in zip(results, [b for b in bodies for _ in range(2)], strict=True):
        by_key.setdefault(request["idempotency_key"], set()).add(body["incident"]["id"])
        assert body["recommendations"], "every call is answered with a recommendation"
    assert all(len(ids) == 1 for ids in by_key.values())
    assert await con.fetchval("SELECT count(*) FROM incidents") == 200
    assert await con.fetchval("SELECT count(*) FROM events WHERE type = 'call.received'") == 200
    ids = [r["id"] for r in await con.fetch("SELECT id FROM events ORDER BY id")]
    assert ids == list(range(1, len(ids) + 1))  # the log has no gaps


async def test_a_retry_with_the_same_key_but_another_body_is_refused(api: Api, con: asyncpg.Connection) -> None:
    token = await api.login("operator")
    key = str(uuid.uuid4())
    status, first = await api.call("POST", "/api/calls", token, json=call_body(idempotency_key=key))
    assert status == 201
    status, again = await api.call("POST", "/api/calls", token, json=call_body(idempotency_key=key))
    assert status == 200 and again["incident"]["id"] == first["incident"]["id"] and again["created"] is False
    status, other = await api.call("POST", "/api/calls", token, json=call_body(idempotency_key=key, phone="0899999999"))
    assert status == 409 and other["error"]["field"] == "idempotency_key"
    assert await con.fetchval("SELECT count(*) FROM incidents") == 1
