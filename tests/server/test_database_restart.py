"""A real fault: the database restarts under a running server; live sockets keep getting events."""

from __future__ import annotations

import asyncio
import json

import websockets

from server import db, events
from tests.conftest import start_api
from tests.server.database_support import own_database
from tests.server.test_events import ws_url


async def test_events_flow_again_after_the_database_restarts() -> None:
    async with own_database() as (embedded, dsn):
        client = await start_api(dsn)
        try:
            token = await client.login("operator")
            async with websockets.connect(ws_url(client, token, after=0)) as ws:
                await ws.recv()
                await asyncio.to_thread(embedded.restart)
                # The first writer after the restart retries until the server accepts connections.
                for _ in range(50):
                    try:
                        con = await db.connect(dsn)
                        break
                    except OSError:
                        await asyncio.sleep(0.1)
                async with con.transaction():
                    await events.append(con, "after.restart", {}, ["role:operator"])
                event_id = await con.fetchval("SELECT max(id) FROM events")
                await con.close()
                while True:
                    message = json.loads(await asyncio.wait_for(ws.recv(), 15))
                    if message["type"] == "event":
                        break
                assert (message["id"], message["event"]) == (event_id, "after.restart")
            # The HTTP side recovers too: the pool replaces its dead connections.
            for _ in range(3):
                status, _ = await client.call("GET", "/readyz")
            assert status == 200
        finally:
            await client.session.close()
            await client.server.close()
