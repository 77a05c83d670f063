"""A call is assessed, then stored with its assessment. A call stored without one (its assessment failed, or an
older process stored it before assessing it) must not stay unassessed for ever: the next start-up assesses it,
and a retried request assesses it too."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from server import audit, call_warnings, db, incidents
from server.config import DatabaseSettings
from server.handlers.calls import CallBody
from tests.conftest import Api, start_api
from tests.server.dispatch_support import call_body
from tests.server.process_support import Remote, Served, cli_env

CALLS = 200


async def _record_only(dsn: str, body: dict[str, Any]) -> str:
    """What a process killed right after recording a call leaves behind: the call, unassessed."""
    intake = CallBody.model_validate(body).model_dump(exclude_none=True)  # as the handler reads it
    intake["location"] = dict(intake["location"])
    pool = await db.create_pool(dsn, DatabaseSettings(pool_min=1, pool_max=2))
    try:
        operator = await pool.fetchval("SELECT id FROM users WHERE username = 'operator'")
        triage = await incidents.load_triage(pool)
        row, created = await incidents.record_call(pool, audit.Actor(operator, "operator"), incidents.CallIntake.parse(intake), triage)
    finally:
        await pool.close()
    assert created
    return str(row["id"])


async def _assessment(con: asyncpg.Connection, incident_id: str) -> tuple[Any, list[dict[str, Any]], int]:
    """(assessed_at, stored warnings, number of call.assessed events) of one call."""
    row = await con.fetchrow("SELECT assessed_at, warnings FROM incidents WHERE id = $1::uuid", incident_id)
    announced = await con.fetchval(
        "SELECT count(*) FROM events WHERE type = 'call.assessed' AND payload->>'incident_id' = $1", incident_id
    )
    return row["assessed_at"], row["warnings"], announced


def _duplicate_of(warnings: list[dict[str, Any]]) -> set[str]:
    return {w["incident_id"] for w in warnings if w["kind"] == "duplicate"}


@contextlib.asynccontextmanager
async def _running(dsn: str) -> AsyncIterator[Api]:
    api = await start_api(dsn)
    try:
        yield api
    finally:
        await api.session.close()
        await api.server.close()


async def _first_call(api: Api) -> tuple[str, str]:
    """An operator's token and the id of a first, assessed call at the scene."""
    token = await api.login("operator")
    status, first = await api.call("POST", "/api/calls", token, json=call_body())
    assert status == 201
    return token, first["incident"]["id"]


async def test_start_up_assesses_a_call_left_unassessed(demo_dsn: str, con: asyncpg.Connection) -> None:
    async with _running(demo_dsn) as api:
        _, first = await _first_call(api)
    orphan = await _record_only(demo_dsn, call_body(phone="0857-1111-2222"))  # same place, another caller
    assert (await _assessment(con, orphan))[::2] == (None, 0)

    async with _running(demo_dsn):  # the restart
        assessed_at, warnings, announced = await _assessment(con, orphan)
        assert assessed_at is not None and announced == 1
        assert _duplicate_of(warnings) == {first}
        event = json.loads(await con.fetchval(
            "SELECT payload::text FROM events WHERE type = 'call.assessed' AND payload->>'incident_id' = $1", orphan))
        assert event["warnings"] == warnings and event["recommendations"]


async def test_a_retried_request_assesses_a_call_left_unassessed(demo_dsn: str, con: asyncpg.Connection) -> None:
    async with _running(demo_dsn) as api:
        token, first = await _first_call(api)
        body = call_body(phone="0857-1111-2222")
        orphan = await _record_only(demo_dsn, body)
        status, retried = await api.call("POST", "/api/calls", token, json=body)  # the client never got an answer
        assert status == 200 and not retried["created"] and retried["incident"]["id"] == orphan
        assert _duplicate_of(retried["warnings"]) == {first}
        assessed_at, warnings, announced = await _assessment(con, orphan)
        assert assessed_at is not None and warnings == retried["warnings"] and announced == 1
        status, again = await api.call("POST", "/api/calls", token, json=body)  # a second retry changes nothing
        assert status == 200 and again["warnings"] == warnings
        assert (await _assessment(con, orphan))[2] == 1


async def test_a_call_whose_assessment_raises_is_stored_unassessed_and_its_retry_assesses_it(
    api: Api, con: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The call is assessed before it is stored; an assessment that fails must not lose the call."""
    token, first = await _first_call(api)

    def broken(*_args: object) -> list[object]:
        raise RuntimeError("the duplicate rules failed")

    monkeypatch.setattr(call_warnings, "find_duplicates", broken)
    body = call_body(phone="0857-1111-2222")
    status, _ = await api.call("POST", "/api/calls", token, json=body)
    assert status == 500
    stored = await con.fetchval("SELECT id::text FROM incidents WHERE idempotency_key = $1", body["idempotency_key"])
    assert stored is not None, "the call was lost with its assessment"
    assert (await _assessment(con, stored))[::2] == (None, 0)
    assert await con.fetchval("SELECT count(*) FROM events WHERE type = 'call.received' AND payload->>'incident_id' = $1", stored) == 1

    monkeypatch.undo()
    status, retried = await api.call("POST", "/api/calls", token, json=body)  # the client retries what failed
    assert status == 200 and not retried["created"] and retried["incident"]["id"] == stored
    assert _duplicate_of(retried["warnings"]) == {first}
    assessed_at, warnings, announced = await _assessment(con, stored)
    assert assessed_at is not None and warnings == retried["warnings"] and announced == 1


async def test_kill_9_during_a_burst_of_calls_loses_none_and_leaves_none_unassessed(
    demo_dsn: str, con: asyncpg.Connection, tmp_path: Path,
) -> None:
    """200 concurrent calls to one place, the process killed while they are under way, then restarted: every call
    answered is stored, and every call stored is assessed and announced once."""
    session = aiohttp.ClientSession()
    served: list[Served] = []
    try:
        served.append(await Served.start(["serve", "--port", "0"], cli_env(demo_dsn), tmp_path / "first.log"))
        api = Remote(None, session, demo_dsn, base=served[0].url)  # type: ignore[arg-type]
        token = await api.login("operator")
        answered: set[str] = set()
        half = asyncio.Event()

        async def one(n: int) -> None:
            try:
                status, body = await api.call("POST", "/api/calls", token, json=call_body(phone=f"0813{n:08d}"))
            except aiohttp.ClientError:
                return  # the process was killed under this request
            assert status == 201, body
            answered.add(body["incident"]["id"])
            if len(answered) == CALLS // 4:
                half.set()

        burst = [asyncio.create_task(one(n)) for n in range(CALLS)]
        await asyncio.wait_for(half.wait(), 60)
        await served[0].kill()
        await asyncio.gather(*burst)
        assert len(answered) < CALLS, "the kill came after the burst; nothing was tested"
        stored = {str(r["id"]) for r in await con.fetch("SELECT id FROM incidents")}
        assert answered <= stored
        left = {str(r["id"]) for r in await con.fetch("SELECT id FROM incidents WHERE assessed_at IS NULL")}

        served.append(await Served.start(["serve", "--port", "0"], cli_env(demo_dsn), tmp_path / "second.log"))
        assert await con.fetchval("SELECT count(*) FROM incidents WHERE assessed_at IS NULL") == 0
        rows = await con.fetch("SELECT id::text AS id, warnings FROM incidents")
        assert {r["id"] for r in rows} == stored
        received = dict(await con.fetch("SELECT payload->>'incident_id', count(*) FROM events WHERE type = 'call.received' GROUP BY 1"))
        assert {r["id"]: received.get(r["id"]) for r in rows} == {r["id"]: 1 for r in rows}  # once each, no call twice
        # Assessed once; again only to add the calls its read could not see yet, and its last word is what is stored.
        assessed = {i: (n, w) for i, n, w in await con.fetch(
            """SELECT payload->>'incident_id', count(*), (array_agg(payload->'warnings' ORDER BY id DESC))[1]
               FROM events WHERE type = 'call.assessed' GROUP BY 1""")}
        for r in rows:
            count, warnings = assessed[r["id"]]
            assert count in (1, 2) and warnings == r["warnings"], (r["id"], count)
        # A call left unassessed (none, unless an assessment failed) is assessed after the restart, when every call
        # of the burst was in: it is a duplicate of all the others.
        for r in rows:
            if r["id"] in left:
                assert _duplicate_of(r["warnings"]) == stored - {r["id"]}, r["id"]
        await served[1].terminate()
    finally:
        await session.close()
        for server in served:
            await server.kill()
