"""A transaction that appended events announces them in its COMMIT's round trip: the NOTIFY follows the
commit (a bus woken by it finds the events), never a failed one, and a NOTIFY that fails once the commit
has gone through (a full notification queue) does not turn the committed change into an error.
And a call's recommendation does not wait for the call's own event to come back through the bus."""

from __future__ import annotations

import asyncio
import logging

import asyncpg
import pytest

from server import db, events
from server.keys import BUS
from tests.conftest import Api
from tests.server.database_support import own_database
from tests.server.dispatch_support import call_body

AUDIENCE = ["role:operator"]


async def _listening(dsn: str) -> tuple[asyncpg.Connection, asyncio.Queue[str]]:
    listener = await db.connect(dsn)
    heard: asyncio.Queue[str] = asyncio.Queue()
    await listener.add_listener(events.CHANNEL, lambda *args: heard.put_nowait(args[-1]))
    return listener, heard


async def test_the_notify_rides_with_the_commit_and_finds_the_events_visible(demo_dsn: str) -> None:
    listener, heard = await _listening(demo_dsn)
    writer, reader = await db.connect(demo_dsn), await db.connect(demo_dsn)
    sent: list[str] = []
    writer.add_query_logger(lambda record: sent.append(record.query))
    try:
        for n in range(20):
            sent.clear()
            async with writer.transaction():
                await events.append(writer, "test.announced", {"n": n}, AUDIENCE)
            async with asyncio.timeout(5):
                await heard.get()
                while len(sent) < 3:  # query loggers are called soon after their statement, not at once
                    await asyncio.sleep(0.001)
            await asyncio.sleep(0.01)  # and no statement of its own for the NOTIFY follows
            assert sent == ["BEGIN;", "SELECT append_event($1, $2, $3, $4)", f"COMMIT; NOTIFY {events.CHANNEL}"]
            # Woken, a reader sees the event: the NOTIFY ran after the commit had ended.
            assert await reader.fetchval("SELECT count(*) FROM events WHERE type = 'test.announced'") == n + 1
    finally:
        for con in (listener, writer, reader):
            await con.close()


async def test_a_commit_that_fails_announces_nothing(demo_dsn: str) -> None:
    listener, heard = await _listening(demo_dsn)
    writer = await db.connect(demo_dsn)
    try:
        await writer.execute("CREATE TABLE once (n int UNIQUE DEFERRABLE INITIALLY DEFERRED)")
        with pytest.raises(asyncpg.UniqueViolationError):
            async with writer.transaction():
                await events.append(writer, "test.refused", {}, AUDIENCE)
                await writer.execute("INSERT INTO once VALUES (1), (1)")  # refused at COMMIT only
        await asyncio.sleep(0.3)
        assert heard.empty()
        assert await writer.fetchval("SELECT count(*) FROM events WHERE type = 'test.refused'") == 0
        async with writer.transaction():  # the connection announces again after that
            await events.append(writer, "test.after", {}, AUDIENCE)
        async with asyncio.timeout(5):
            await heard.get()
    finally:
        await listener.close()
        await writer.close()


async def test_a_full_notification_queue_after_the_commit_leaves_the_change_committed_and_the_caller_answered(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with own_database() as (embedded, dsn):
        admin = await db.connect(dsn)
        try:
            await admin.execute("ALTER SYSTEM SET max_notify_queue_pages = 64")  # 512 KB
        finally:
            await admin.close()
        await asyncio.to_thread(embedded.restart)  # read only at start
        # A listener inside a transaction reads no notification, so the queue keeps them all until it fills.
        stuck, filler, writer = await db.connect(dsn), await db.connect(dsn), await db.connect(dsn)
        try:
            await stuck.execute("LISTEN somewhere")
            await stuck.execute("BEGIN")
            with pytest.raises(asyncpg.ProgramLimitExceededError, match="NOTIFY"):
                for _ in range(1000):
                    await filler.execute("SELECT pg_notify('somewhere', repeat('x', 7900))")
            with caplog.at_level(logging.WARNING, logger="server.announcing"):
                async with writer.transaction():  # no exception: the change is committed
                    await events.append(writer, "test.committed", {}, AUDIENCE)
            assert "not announced" in caplog.text
            assert await writer.fetchval("SELECT count(*) FROM events WHERE type = 'test.committed'") == 1
            caplog.clear()
            with caplog.at_level(logging.WARNING, logger="server.announcing"):  # a read that announces still reads
                rows = await writer.fetch_announcing("SELECT n FROM generate_series(1, $1) AS n", 2, key="n")
            assert [row["n"] for row in rows] == [1, 2]
            assert "not announced" in caplog.text
            assert not writer.is_in_transaction()
            assert await writer.fetchval("SELECT 1") == 1  # and the connection is fit for the next user
        finally:
            for con in (stuck, filler, writer):
                await con.close()


async def test_a_call_is_recommended_without_waiting_for_its_own_event_to_come_back(
    api: Api, caplog: pytest.LogCaptureFixture,
) -> None:
    """The recommendation must have seen every change committed before the call; the call's own event
    (committed by the request) is not one of them. With the bus stopped, waiting for it would time out."""
    operator = await api.login("operator")
    await api.server.app[BUS].stop()
    with caplog.at_level(logging.WARNING, logger="server.fleet"):
        status, body = await api.call("POST", "/api/calls", operator, json=call_body())
    assert status == 201, body
    assert body["recommendations"]
    assert "behind the event log" not in caplog.text


async def test_a_read_that_announces_notifies_once_with_rows_or_none(demo_dsn: str) -> None:
    listener, heard = await _listening(demo_dsn)
    reader = await db.connect(demo_dsn)
    try:
        for count in (3, 0):
            rows = await reader.fetch_announcing("SELECT n FROM generate_series(1, $1) AS n", count, key="n")
            assert [row["n"] for row in rows] == list(range(1, count + 1))
            async with asyncio.timeout(5):
                await heard.get()
            await asyncio.sleep(0.1)
            assert heard.empty()  # one NOTIFY, whatever the number of rows
    finally:
        await listener.close()
        await reader.close()


async def test_a_call_s_events_are_announced_by_its_second_read(api: Api) -> None:
    listener, heard = await _listening(api.dsn)
    try:
        operator = await api.login("operator")
        status, body = await api.call("POST", "/api/calls", operator, json=call_body())
        assert status == 201, body
        async with asyncio.timeout(5):
            await heard.get()
    finally:
        await listener.close()
