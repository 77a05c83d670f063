"""Overdue requests escalate exactly once, even with two server processes sweeping;
expired requests can no longer be accepted."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import websockets

from server import db
from tests.conftest import start_api
from tests.server.test_consults import close_api, consult_config, request_consult


async def test_overdue_requests_escalate_once_with_two_apps_sweeping(demo_dsn: str, tmp_path: Path) -> None:
    config = consult_config(demo_dsn, tmp_path, emergency_respond_s=0.5, emergency_expire_s=60.0, sweep_s=0.05)
    first, second = await start_api(demo_dsn, config), await start_api(demo_dsn, config)
    try:
        pk, sp, admin = await first.login("puskesmas"), await first.login("specialist"), await first.login("admin")
        _, me = await first.call("GET", "/api/me", sp)
        assert (await first.call("PUT", "/api/oncall", sp, json={"specialty": "jantung", "on_call": True}))[0] == 200
        url = first.url("/ws/events").replace("http://", "ws://") + f"?token={sp}"
        async with websockets.connect(url) as live:
            await live.recv()  # hello
            ids = []
            for _ in range(12):
                _, body = await request_consult(first, pk)
                ids.append(body["consult"]["id"])
            # The on-call specialist hears of each new request, then of each escalation.
            overdue: set[str] = set()
            while len(overdue) < len(ids):
                message = json.loads(await asyncio.wait_for(live.recv(), 10))
                if message.get("event") == "consult.overdue":
                    overdue.add(message["data"]["id"])
        assert overdue == set(ids)
        await asyncio.sleep(0.5)  # both apps keep sweeping: nothing escalates twice
        con = await db.connect(demo_dsn)
        try:
            rows = await con.fetch(
                "SELECT payload->>'id' AS id, audience FROM events WHERE type = 'consult.overdue' ORDER BY id"
            )
        finally:
            await con.close()
        assert sorted(r["id"] for r in rows) == sorted(ids)
        assert all({"role:admin", f"user:{me['id']}"} <= set(r["audience"]) for r in rows)
        _, listing = await second.call("GET", "/api/consults", admin)
        assert all(c["overdue"] is True and c["escalated_at"] for c in listing["consults"])
        # Overdue is a flag, not a state: it can still be accepted.
        status, body = await second.call("POST", f"/api/consults/{ids[0]}/accept", sp)
        assert status == 200 and body["consult"]["overdue"] is False
    finally:
        await close_api(first)
        await close_api(second)


async def test_a_request_past_its_expiry_expires_and_cannot_be_accepted(demo_dsn: str, tmp_path: Path) -> None:
    config = consult_config(demo_dsn, tmp_path, routine_respond_s=0.2, routine_expire_s=0.4, sweep_s=0.05)
    client = await start_api(demo_dsn, config)
    try:
        pk, sp = await client.login("puskesmas"), await client.login("specialist")
        _, body = await request_consult(client, pk, urgency="routine")
        consult_id = body["consult"]["id"]
        for _ in range(60):
            _, seen = await client.call("GET", f"/api/consults/{consult_id}", pk)
            if seen["consult"]["state"] == "expired":
                break
            await asyncio.sleep(0.05)
        assert seen["consult"]["state"] == "expired" and seen["consult"]["ended_at"]
        status, body = await client.call("POST", f"/api/consults/{consult_id}/accept", sp)
        assert status == 409
        admin = await client.login("admin")
        _, log = await client.call("GET", f"/api/audit?object=consult:{consult_id}&action=consult.expired", admin)
        assert [e["username"] for e in log["entries"]] == ["system"]
    finally:
        await close_api(client)
