"""What a field unit's phone replays when it resumes: its active and recent assignments, never its whole history
of callers' names and phone numbers; and a phone back within the window misses nothing."""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg
import pytest

from server import missed_dispatches, unit_replay
from tests.conftest import Api
from tests.server.dispatch_support import CREW_PASSWORD, Socket, call_body, crew_for
from tests.server.test_call_warnings import rows_read


async def dispatch(api: Api, operator: str, unit_id: str, phone: str) -> tuple[str, int]:
    """A call from ``phone`` with ``unit_id`` sent to it: (incident id, assignment id)."""
    status, created = await api.call("POST", "/api/calls", operator, json=call_body(phone=phone, caller_name=f"Penelepon {phone}"))
    assert status == 201, created
    incident_id = created["incident"]["id"]
    status, sent = await api.call("POST", f"/api/incidents/{incident_id}/dispatch", operator, json={"unit_id": unit_id})
    assert status == 201, sent
    return incident_id, sent["assignment"]["id"]


async def dispatch_and_withdraw(api: Api, operator: str, unit_id: str, phone: str) -> None:
    incident_id, assignment_id = await dispatch(api, operator, unit_id, phone)
    status, body = await api.call("POST", f"/api/incidents/{incident_id}/assignments/{assignment_id}/cancel", operator)
    assert status == 200, body


async def tokens(api: Api, con: asyncpg.Connection, unit_id: str) -> tuple[str, str]:
    """An operator's token and the token of ``unit_id``'s crew."""
    return await api.login("operator"), await api.login(await crew_for(con, unit_id), CREW_PASSWORD)


async def age(con: asyncpg.Connection, through_event: int, by: dt.timedelta) -> None:
    """Move every event up to ``through_event`` and the assignments they made ``by`` into the past (order kept)."""
    await con.execute("UPDATE events SET at = at - $2::interval WHERE id <= $1", through_event, by)
    await con.execute(
        """UPDATE assignments SET assigned_at = assigned_at - $2::interval, ended_at = ended_at - $2::interval
           WHERE assigned_at <= (SELECT at FROM events WHERE id = $1) + $2::interval""",
        through_event, by,
    )


async def replay(api: Api, token: str, after: int, active_incident: str, operator: str) -> list[dict[str, Any]]:
    """Every event the phone replays from ``after``; a change made after it connects marks the end of the replay."""
    phone = await Socket.open(api, "/ws/unit", token, after=after)
    status, body = await api.call("PATCH", f"/api/incidents/{active_incident}", operator, json={"notes": "penanda"})
    assert status == 200, body
    await phone.wait_for(lambda m: m.get("event") == "incident.updated" and m["data"]["incident"]["notes"] == "penanda")
    await phone.close()
    return [m for m in phone.messages if m.get("type") == "event"]


def callers(events: list[dict[str, Any]]) -> set[str]:
    return {e["data"]["incident"]["caller_phone"] for e in events if e["event"] == "unit.dispatched"}


async def test_a_phone_asking_from_zero_gets_its_active_and_recent_assignments_only(api: Api, con: asyncpg.Connection) -> None:
    unit_id = "ns-02"
    operator, crew = await tokens(api, con, unit_id)
    await dispatch_and_withdraw(api, operator, unit_id, "081111110001")
    await age(con, await con.fetchval("SELECT max(id) FROM events"), dt.timedelta(days=3))  # ended long ago
    await dispatch_and_withdraw(api, operator, unit_id, "081111110002")  # ended just now
    active, _ = await dispatch(api, operator, unit_id, "081111110003")

    replayed = await replay(api, crew, 0, active, operator)
    assert callers(replayed) == {"081111110002", "081111110003"}
    assert "081111110001" not in str(replayed)


async def test_an_active_assignment_older_than_the_window_is_replayed_whole(api: Api, con: asyncpg.Connection) -> None:
    unit_id = "ns-03"
    operator, crew = await tokens(api, con, unit_id)
    await dispatch_and_withdraw(api, operator, unit_id, "081122220001")
    ended = await con.fetchval("SELECT max(id) FROM events")
    active, _ = await dispatch(api, operator, unit_id, "081122220002")
    # Four days ago the first one ended; two days ago the unit was sent to the one it is still on.
    await age(con, await con.fetchval("SELECT max(id) FROM events"), dt.timedelta(days=2))
    await age(con, ended, dt.timedelta(days=2))

    replayed = await replay(api, crew, 0, active, operator)
    assert callers(replayed) == {"081122220002"}
    assert "081122220001" not in str(replayed)


async def test_a_phone_back_within_the_window_gets_every_event_it_missed(api: Api, con: asyncpg.Connection) -> None:
    unit_id = "ns-04"
    operator, crew = await tokens(api, con, unit_id)
    phone = await Socket.open(api, "/ws/unit", crew)
    last_seen = phone.messages[0]["last_event_id"]
    await phone.close()
    # While it is away: a dispatch withdrawn, the unit put out of service by radio and back, and a new dispatch.
    await dispatch_and_withdraw(api, operator, unit_id, "081133330001")
    for status in ("unavailable", "available"):
        done, body = await api.call("POST", f"/api/units/{unit_id}/status", operator, json={"status": status})
        assert done == 200, body
    active, _ = await dispatch(api, operator, unit_id, "081133330002")
    expected = [r["id"] for r in await con.fetch(
        "SELECT id FROM events WHERE id > $1 AND $2 = ANY(audience) ORDER BY id", last_seen, f"unit:{unit_id}"
    )]

    replayed = await replay(api, crew, last_seen, active, operator)
    assert [e["id"] for e in replayed][:len(expected)] == expected
    assert callers(replayed) == {"081133330001", "081133330002"}


async def test_a_phone_back_from_long_ago_reads_what_it_missed_from_its_horizon(
    api: Api, con: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A phone resuming from an id of last week: what it missed is read from its horizon on, not through every event
    # since the week-old id (a scan of the whole log between them, at every such reconnect).
    unit_id = "ns-05"
    operator, crew = await tokens(api, con, unit_id)
    await dispatch_and_withdraw(api, operator, unit_id, "081144440001")
    await age(con, await con.fetchval("SELECT max(id) FROM events"), dt.timedelta(days=7))
    await dispatch_and_withdraw(api, operator, unit_id, "081144440002")
    read_from: list[int] = []
    missed = missed_dispatches.missed

    async def reading(con: asyncpg.Connection, unit: str, after: int, window_h: float) -> list[dict[str, Any]]:
        read_from.append(after)
        return await missed(con, unit, after, window_h)

    monkeypatch.setattr(missed_dispatches, "missed", reading)
    phone = await Socket.open(api, "/ws/unit", crew, after=1)
    await phone.close()
    horizon = await unit_replay.horizon(con, unit_id, 12.0)
    assert horizon > 1 and read_from == [horizon]
    assert [m["incident"]["incident_id"] for m in phone.messages[0]["missed"]] == []  # withdrawn by hand: not "missed"


async def test_a_resuming_phone_finds_its_units_recent_assignments_by_index_not_by_reading_every_one(con: asyncpg.Connection) -> None:
    # A year of the fleet's dispatches, each long ended: where its replay starts is read from the unit's own recent
    # ones, at every reconnect of every phone, whatever the history.
    units = [r["id"] for r in await con.fetch("SELECT id FROM units ORDER BY id")]
    await con.execute(
        """WITH past AS (
               INSERT INTO incidents (id, idempotency_key, request_digest, caller_phone, priority, lat, lon, closed_at, status)
               SELECT gen_random_uuid(), 'past-' || n, 'x', '0811-' || n, 'kuning', -6.3, 106.7, now() - make_interval(hours => n), 'closed'
               FROM generate_series(1, 20000) AS n
               RETURNING id, closed_at, caller_phone)
           INSERT INTO assignments (incident_id, unit_id, assigned_at, ack_deadline, ended_at, end_reason)
           SELECT id, ($1::text[])[1 + substr(caller_phone, 6)::int % cardinality($1::text[])], closed_at - interval '1 hour',
                  closed_at, closed_at, 'completed'
           FROM past""",
        units,
    )
    await con.execute("ANALYZE assignments")
    await con.execute("SELECT append_event('test.event', ARRAY['role:operator'], '{}'::jsonb)")  # the log is read back to it
    plan = (await con.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {unit_replay.HORIZON}", units[0], 12 * 3600.0))[0]["Plan"]
    assert rows_read(plan) <= 50, f"read {rows_read(plan)} rows to find where {units[0]}'s replay starts"
