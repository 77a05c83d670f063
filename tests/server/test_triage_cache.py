"""The triage table is read once per process and follows an admin's change on every process."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from tests.conftest import Api, start_api
from tests.server.dispatch_support import call_body


async def _priority_of_a_new_call(api: Api, token: str) -> str:
    status, created = await api.call("POST", "/api/calls", token, json=call_body(call_type="elderly_fall"))
    assert status == 201, created
    priority: str = created["incident"]["priority"]
    return priority


async def _set_priority(api: Api, con: asyncpg.Connection, priority: str) -> None:
    row = await con.fetchrow("SELECT label_id, label_en, capabilities, active FROM triage_types WHERE code = 'elderly_fall'")
    body: dict[str, Any] = {**dict(row), "priority": priority}
    status, answer = await api.call("PUT", "/api/triage/elderly_fall", await api.login("admin"), json=body)
    assert status == 200, answer


async def test_a_change_on_one_process_reaches_the_calls_of_another(api: Api, con: asyncpg.Connection) -> None:
    other = await start_api(api.dsn)
    try:
        operator = await api.login("operator")
        assert await _priority_of_a_new_call(api, operator) == "kuning"  # the table is now cached on the first process
        await _set_priority(other, con, "merah")
        for _ in range(50):  # the change travels on the event bus
            if await _priority_of_a_new_call(api, operator) == "merah":
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the first process kept its cached triage table after a change on the second")
    finally:
        await other.session.close()
        await other.server.close()


async def test_the_process_that_made_the_change_uses_it_at_once(api: Api, con: asyncpg.Connection) -> None:
    operator = await api.login("operator")
    assert await _priority_of_a_new_call(api, operator) == "kuning"
    await _set_priority(api, con, "merah")
    assert await _priority_of_a_new_call(api, operator) == "merah"
