"""The shipped deployment works as one system: nginx (TLS, websockets, static files) in front of two
psc119 processes on one PostgreSQL over TCP, every client through nginx only; a process killed, the
clients carry on through the other."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import websockets

from server import db
from tests.conftest import REPO
from tests.server.dispatch_support import CREW_PASSWORD, call_body, crew_for
from tests.server.nginx_support import Deployment, deployment, receive, request
from tests.server.process_support import Remote
from tests.server.test_consults import request_consult


def is_event(name: str, **data: object) -> object:
    return lambda m: m.get("type") == "event" and m["event"] == name and all(m["data"].get(k) == v for k, v in data.items())


async def join_room(
    deployed: Deployment, port: int, consult_id: str, token: str, **headers: str,
) -> tuple[websockets.ClientConnection, dict[str, Any]]:
    ws = await deployed.socket_on(port, f"/ws/consults/{consult_id}", **headers)
    await ws.send(json.dumps({"type": "join", "token": token, "kind": "browser"}))
    welcome = await receive(ws, lambda m: True)
    assert welcome["type"] == "welcome", welcome
    return ws, welcome


async def rejoin(deployed: Deployment, consult_id: str, token: str) -> tuple[websockets.ClientConnection, dict[str, Any]]:
    """What a member's client does when its socket drops: join again through nginx until welcomed."""
    for _ in range(40):
        ws = await websockets.connect(deployed.wss(f"/ws/consults/{consult_id}"), ssl=deployed.tls, open_timeout=10)
        await ws.send(json.dumps({"type": "join", "token": token, "kind": "browser"}))
        try:
            first = await receive(ws, lambda m: True)
        except websockets.ConnectionClosed:
            assert ws.close_code == 1013, ws.close_code  # the room's process is gone: try again
            await asyncio.sleep(0.25)  # as the web client does, a little later
            continue
        assert first["type"] == "welcome", first
        return ws, first
    raise AssertionError("never welcomed back")


async def closed(ws: websockets.ClientConnection) -> int | None:
    with pytest.raises(websockets.ConnectionClosed):
        while True:
            await ws.recv()
    return ws.close_code


async def test_calls_dispatch_and_rooms_cross_processes_through_nginx_and_survive_a_killed_process(tmp_path: Path) -> None:
    async with deployment(tmp_path) as deployed, deployed.session() as session:
        a, b = deployed.ports
        api = Remote(None, session, deployed.dsn, base=deployed.base)  # type: ignore[arg-type]
        con = await db.connect(deployed.dsn)
        try:
            operator = await api.login("operator")
            status, created, _ = await request(session, "POST", api.url("/api/calls"), operator, json=call_body())
            assert status == 201, created
            incident, unit_id = created["incident"]["id"], created["recommendations"][0]["unit_id"]
            crew = await api.login(await crew_for(con, unit_id), CREW_PASSWORD)
            phone = await deployed.socket_on(a, f"/ws/unit?token={crew}&after=0")
            assert (await receive(phone, lambda m: True))["type"] == "hello"

            # The dispatch is posted to process b; the phone, on a, rings and acknowledges.
            await deployed.steer(session, away_from=a)
            status, body, port = await request(session, "POST", api.url(f"/api/incidents/{incident}/dispatch"), operator, json={"unit_id": unit_id})
            assert (status, port) == (201, b), body
            offer = await receive(phone, is_event("unit.dispatched", unit_id=unit_id))
            await phone.send(json.dumps({"type": "ack", "assignment_id": offer["data"]["assignment_id"], "ref": "ack-1"}))
            assert (await receive(phone, lambda m: m.get("ref") == "ack-1"))["status"] == "en_route"
            last_seen = offer["id"]

            # A consult room whose members reach different processes: the puskesmas doctor's socket
            # on a (which claims the room under its advertise_url), the specialist's on b (relayed).
            pk, sp = await api.login("puskesmas"), await api.login("specialist")
            status, body = await request_consult(api, pk)
            consult_id = body["consult"]["id"]
            assert (await api.call("POST", f"/api/consults/{consult_id}/accept", sp))[0] == 200
            pk_token = (await api.call("POST", f"/api/consults/{consult_id}/join", pk))[1]["token"]
            sp_token = (await api.call("POST", f"/api/consults/{consult_id}/join", sp))[1]["token"]
            pk_ws, _ = await join_room(deployed, a, consult_id, pk_token)
            owner = await con.fetchval("SELECT url FROM room_owners WHERE consult_id = $1", uuid.UUID(consult_id))
            assert owner == f"http://127.0.0.1:{a}"
            # The relay marker sent by a client is dropped by nginx: only a process may relay to another.
            sp_ws, welcome = await join_room(deployed, b, consult_id, sp_token, **{"X-PSC119-Relayed": "1"})
            assert [p["role"] for p in welcome["peers"]] == ["requester"]
            assert (await receive(pk_ws, lambda m: m["type"] == "presence"))["state"] == "joined"
            await sp_ws.send(json.dumps({"type": "chat", "id": uuid.uuid4().hex, "text": "lewat nginx"}))
            assert (await receive(pk_ws, lambda m: m["type"] == "chat"))["text"] == "lewat nginx"

            # Process a dies without a word.
            await deployed.processes[0].kill()
            assert await closed(phone) is not None
            assert await closed(sp_ws) == 1013  # its relay to the room's process is cut: try again
            await closed(pk_ws)

            # Everyone carries on through nginx, which now sends everything to b.
            phone = await deployed.socket_on(b, f"/ws/unit?token={crew}&after={last_seen}")
            assert (await receive(phone, lambda m: True))["type"] == "hello"
            sp_ws, _ = await rejoin(deployed, consult_id, sp_token)
            pk_ws, welcome = await rejoin(deployed, consult_id, pk_token)
            assert [p["role"] for p in welcome["peers"]] == ["specialist"]
            assert await con.fetchval("SELECT url FROM room_owners WHERE consult_id = $1", uuid.UUID(consult_id)) == f"http://127.0.0.1:{b}"
            await pk_ws.send(json.dumps({"type": "chat", "id": uuid.uuid4().hex, "text": "tersambung lagi"}))
            assert (await receive(sp_ws, lambda m: m["type"] == "chat"))["text"] == "tersambung lagi"

            # The unit is released and sent to a new call; every request succeeds (none sees a 502).
            assignment = offer["data"]["assignment_id"]
            status, body, port = await request(session, "POST", api.url(f"/api/incidents/{incident}/assignments/{assignment}/cancel"), operator)
            assert (status, port) == (200, b), body
            await receive(phone, is_event("dispatch.withdrawn", assignment_id=assignment))
            status, created, port = await request(session, "POST", api.url("/api/calls"), operator, json=call_body(phone="0815000009"))
            assert (status, port) == (201, b), created
            dispatch_url = api.url(f"/api/incidents/{created['incident']['id']}/dispatch")
            status, body, port = await request(session, "POST", dispatch_url, operator, json={"unit_id": unit_id})
            assert (status, port) == (201, b), body
            offer = await receive(phone, is_event("unit.dispatched", unit_id=unit_id))
            await phone.send(json.dumps({"type": "ack", "assignment_id": offer["data"]["assignment_id"], "ref": "ack-2"}))
            assert (await receive(phone, lambda m: m.get("ref") == "ack-2"))["status"] == "en_route"
            for ws in (phone, pk_ws, sp_ws):
                await ws.close()
        finally:
            await con.close()


async def test_the_client_address_is_the_clients_and_only_the_proxy_is_uncapped(tmp_path: Path) -> None:
    async with deployment(tmp_path, PSC119_LIMITS_MAX_CONNECTIONS_PER_ADDRESS="3") as deployed:
        con = await db.connect(deployed.dsn)
        try:
            async with deployed.session(source="127.0.0.2") as session:
                api = Remote(None, session, deployed.dsn, base=deployed.base)  # type: ignore[arg-type]
                # A header the client wrote itself is not believed; nginx's is.
                spoofed = {"X-Forwarded-For": "10.9.9.9"}
                status, body = await api.call("POST", "/api/auth/login", json={"username": "operator", "password": "wrong-pass"}, headers=spoofed)
                assert status == 401, body
                token = await api.login("operator")
                assert await con.fetchval("SELECT address FROM sessions ORDER BY created_at DESC LIMIT 1") == "127.0.0.2"
                assert await con.fetchval("SELECT key FROM login_counters WHERE scope = 'address'") == "127.0.0.2"
                logged = await con.fetch("SELECT action, address FROM audit_log WHERE action LIKE 'auth.login%' ORDER BY id")
                assert [(r["action"], r["address"]) for r in logged] == [("auth.login_failed", "127.0.0.2"), ("auth.login", "127.0.0.2")]

                # Every connection reaches psc119 from nginx's address; the per-address cap (3 here)
                # is for clients, so ten live sockets of one user all open.
                sockets = [await websockets.connect(deployed.wss(f"/ws/events?token={token}"), ssl=deployed.tls) for _ in range(10)]
                for ws in sockets:
                    assert (await receive(ws, lambda m: True))["type"] == "hello"
                    await ws.close()

                # Scripts come from disk through nginx; pages from psc119, with its security headers.
                async with session.get(deployed.base + "/js/api.js") as response:
                    assert response.status == 200 and await response.read() == (REPO / "web" / "js" / "api.js").read_bytes()
                    assert "Content-Security-Policy" not in response.headers
                    assert response.headers["X-Content-Type-Options"] == "nosniff"
                async with session.get(deployed.base + "/operator.html") as response:
                    assert response.status == 200 and "Content-Security-Policy" in response.headers
                async with session.get(deployed.base + "/metrics") as response:
                    assert response.status == 403
                async with session.get(deployed.http_base + "/operator.html", allow_redirects=False) as response:
                    assert response.status == 301
                    assert response.headers["Location"] == "https://127.0.0.1/operator.html"
        finally:
            await con.close()
