"""The statements the dispatch path sends for one call's life, and for the phones' presence: each is a round trip
to PostgreSQL, and under load round trips are most of the server's work. A budget per step keeps one more from
slipping in unnoticed. A new connection learns the types a call's life uses as it opens, not in a request."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import asyncpg
import pytest

from server import assignments, audit, call_intake, closing, db, incidents, phone_presence, sessions
from server.config import DatabaseSettings, DispatchSettings
from server.fleet import Fleet
from server.keys import BUS, CONFIG, METRICS, TRIAGE
from server.revocation import SessionEnded
from tests.conftest import Api
from tests.server.dispatch_support import call_body

OPERATOR = audit.Actor(user_id=None, username="operator")
SETTINGS = DispatchSettings()


@pytest.fixture
async def counted(demo_dsn: str) -> AsyncIterator[tuple[asyncpg.Pool, list[str]]]:
    """A pool of one connection and the statements it sends, as the app's pool sends them."""
    pool = await db.create_pool(demo_dsn, DatabaseSettings(pool_min=1, pool_max=1))
    sent: list[str] = []
    async with pool.acquire() as con:
        con.add_query_logger(lambda record: sent.append(record.query))
    yield pool, sent
    await pool.close()


async def test_one_call_s_life_sends_few_statements(api: Api, counted: tuple[asyncpg.Pool, list[str]]) -> None:
    pool, sent = counted
    app = api.server.app
    settings, triage, metrics = app[CONFIG].dispatch, await app[TRIAGE].get(), app[METRICS]
    fleet = Fleet(pool, app[BUS], settings)
    await fleet.start()
    try:
        intake = incidents.CallIntake.parse(call_body(call_type="diabetic_emergency"))
        await fleet.current()  # the index has seen every event: what it ranks from is what the read sees
        sent.clear()
        taken = await call_intake.take(pool, fleet, settings, OPERATOR, intake, triage)
        assert taken.created and taken.tiers is not None
        assert len(sent) <= 3, sent  # one read (the time, the newest event, both tiers' phones, the area, the calls it may
        # repeat), the call with its assessment, events and audit entry (a transaction of its own), the calls it may
        # repeat read again (one stored meanwhile) with the NOTIFY
        row, tiers = taken.row, taken.tiers
        unit = tiers["recommendations"][0]["unit_id"]

        [socket] = await opened(pool, phone_presence.Refreshes(pool, settings.phone_offline_s), [unit])
        sent.clear()
        assignment, phone = await assignments.dispatch(pool, fleet, settings, triage, OPERATOR, str(row["id"]), unit, metrics)
        assert len(sent) <= 6, sent  # BEGIN, incident, unit + time + units on the incident + its phone, its status + log + audit
        # + assignment, incident + event, COMMIT + NOTIFY
        assert phone == (await phone_presence.phones(pool, [unit], settings.phone_offline_s))[unit]
        assert phone["connected"] and phone["last_seen"] is not None
        await socket.close()

        # A phone's report reads its session in the change's own transaction: no read of its own before it.
        user_id = await pool.fetchval("SELECT id FROM users WHERE username = 'operator'")
        token, _ = await sessions.create(pool, user_id, dt.timedelta(hours=1), None)
        session = await sessions.resolve(pool, token)
        assert session is not None
        sent.clear()
        await assignments.acknowledge(pool, OPERATOR, unit, assignment["id"], metrics, report_id="ack-1", session_id=session.id)
        assert len(sent) <= 6, sent  # BEGIN, incident, unit + time, assignment + units on it + whether the report is a repeat
        # + whether the session is live, status + log + audit + ack time + incident + event, COMMIT + NOTIFY

        # Once the session has ended, the next report is refused and changes nothing.
        assert await sessions.revoke(pool, token)
        with pytest.raises(SessionEnded):
            await assignments.change_status(pool, OPERATOR, unit, "on_scene", None, metrics, crew=True, report_id="scene-1",
                                            session_id=session.id)
        assert await pool.fetchval("SELECT status FROM units WHERE id = $1", unit) == "en_route"
        assert not await pool.fetchval("SELECT count(*) FROM unit_status_log WHERE report_id = 'scene-1'")
    finally:
        await fleet.stop()


async def test_a_new_connection_learns_the_types_of_a_call_s_life_as_it_opens(
    api: Api, counted: tuple[asyncpg.Pool, list[str]]
) -> None:
    pool, sent = counted  # a connection just opened: nothing run on it yet but what opening it ran
    app = api.server.app
    settings, triage, metrics = app[CONFIG].dispatch, await app[TRIAGE].get(), app[METRICS]
    fleet = Fleet(pool, app[BUS], settings)
    await fleet.start()
    try:
        taken = await call_intake.take(pool, fleet, settings, OPERATOR, incidents.CallIntake.parse(call_body(phone="0813-0000-0002")), triage)
        assert taken.tiers is not None
        unit = taken.tiers["recommendations"][0]["unit_id"]
        [socket] = await opened(pool, phone_presence.Refreshes(pool, settings.phone_offline_s), [unit])
        assignment, _ = await assignments.dispatch(pool, fleet, settings, triage, OPERATOR, str(taken.row["id"]), unit, metrics)
        user_id = await pool.fetchval("SELECT id FROM users WHERE username = 'operator'")
        token, _ = await sessions.create(pool, user_id, dt.timedelta(hours=1), None)
        session = await sessions.resolve(pool, token)
        assert session is not None
        await assignments.acknowledge(pool, OPERATOR, unit, assignment["id"], metrics, report_id="ack-2", session_id=session.id)
        for step, reason in (("on_scene", None), ("available", "treated_on_scene")):
            await assignments.change_status(pool, OPERATOR, unit, step, reason, metrics, crew=True, session_id=session.id)
        await socket.close()
        closed = await closing.close(pool, OPERATOR, str(taken.row["id"]), "emergency")
        assert closed["status"] == "closed"
        # asyncpg's catalog read of a type it has no codec for, as PostgreSQL was sent it: none in any request
        assert not [q for q in sent if "typeinfo_tree" in q]
    finally:
        await fleet.stop()


async def test_closing_an_incident_sends_few_statements(api: Api, counted: tuple[asyncpg.Pool, list[str]]) -> None:
    pool, sent = counted
    app = api.server.app
    fleet = Fleet(pool, app[BUS], app[CONFIG].dispatch)
    await fleet.start()
    try:
        triage = await app[TRIAGE].get()
        for n in range(2):  # the first teaches the connection the types it reads
            taken = await call_intake.take(pool, fleet, app[CONFIG].dispatch, OPERATOR,
                                           incidents.CallIntake.parse(call_body(phone=f"0813-0000-100{n}")), triage)
            sent.clear()
            closed = await closing.close(pool, OPERATOR, str(taken.row["id"]), "information")
        assert closed["status"] == "closed" and closed["closed_at"] is not None
        assert len(sent) <= 5, sent  # BEGIN, incident, the time + units on it, incident + event + audit, COMMIT + NOTIFY
    finally:
        await fleet.stop()


async def opened(pool: asyncpg.Pool, refreshes: phone_presence.Refreshes, units: list[str]) -> list[phone_presence.PhoneSocket]:
    sockets = [phone_presence.PhoneSocket(pool, refreshes, unit, SETTINGS) for unit in units]
    for socket in sockets:
        await socket.open()
        socket._refreshed -= SETTINGS.phone_offline_s  # last written long enough ago to be written again
    return sockets


async def test_many_phones_heard_from_are_refreshed_in_one_statement(
    counted: tuple[asyncpg.Pool, list[str]], con: asyncpg.Connection,
) -> None:
    pool, sent = counted
    units = [r["id"] for r in await con.fetch("SELECT id FROM units ORDER BY id LIMIT 40")]
    refreshes = phone_presence.Refreshes(pool, SETTINGS.phone_offline_s)
    sockets = await opened(pool, refreshes, units)
    await con.execute("UPDATE phone_sockets SET seen_at = now() - interval '10 seconds'")
    for socket in sockets:
        socket.heard()
    sent.clear()
    await refreshes.write()
    assert len([q for q in sent if q.startswith("UPDATE phone_sockets")]) == 1, sent
    assert await con.fetchval("SELECT count(*) FROM phone_sockets WHERE seen_at > now() - interval '5 seconds'") == len(units)


async def test_an_expired_phone_heard_from_rejoins_and_a_closed_one_does_not(
    counted: tuple[asyncpg.Pool, list[str]], con: asyncpg.Connection,
) -> None:
    pool, _sent = counted
    expired_unit, closed_unit = [r["id"] for r in await con.fetch("SELECT id FROM units ORDER BY id LIMIT 2")]
    refreshes = phone_presence.Refreshes(pool, SETTINGS.phone_offline_s)
    expired, closed = await opened(pool, refreshes, [expired_unit, closed_unit])
    await con.execute("UPDATE phone_sockets SET closed_at = now() WHERE unit_id = $1", expired_unit)  # swept meanwhile
    expired.heard()
    closed.heard()
    await closed.close()
    await refreshes.write()
    live = await phone_presence.phones(con, [expired_unit, closed_unit], SETTINGS.phone_offline_s)
    assert live[expired_unit]["connected"]
    assert not live[closed_unit]["connected"]
