"""Helpers for the dispatch tests: calls, crews bound to units, and live sockets."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import asyncpg
import websockets

from server import audit, users
from server.passwords import Passwords
from tests.conftest import TEST_AUTH, Api

CREW_PASSWORD = "crew-pass-119"
# Near Pondok Aren's kelurahan offices: inside the demo region.
SCENE = {"lat": -6.2695, "lon": 106.7070}


def call_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "idempotency_key": str(uuid.uuid4()),
        "phone": "0812-3456-7890",
        "caller_name": "Ibu Sari",
        "location": SCENE,
        "address": "Jl. Ceger Raya 12",
        "call_type": "chest_pain",
        "complaint": "nyeri dada sejak 30 menit",
    }
    body.update(overrides)
    return body


async def crew_for(con: asyncpg.Connection, unit_id: str) -> str:
    """A field_team account bound to ``unit_id``; returns its username."""
    username = f"crew-{unit_id}"
    if not await con.fetchval("SELECT 1 FROM users WHERE username = $1", username):
        await users.add_user(
            con, Passwords(TEST_AUTH), actor=audit.CLI, username=username, role="field_team",
            password=CREW_PASSWORD, min_password_length=8, unit=unit_id,
        )
    return username


def socket_url(api: Api, path: str, token: str, after: int | None = None) -> str:
    url = api.url(path).replace("http://", "ws://") + f"?token={token}"
    return url if after is None else f"{url}&after={after}"


class Socket:
    """A live socket that keeps every message it receives, for waiting on the one a test needs."""

    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws
        self.messages: list[dict[str, Any]] = []

    @classmethod
    async def open(cls, api: Api, path: str, token: str, after: int | None = None) -> Socket:
        socket = cls(await websockets.connect(socket_url(api, path, token, after)))
        hello = await socket.next()
        assert hello["type"] == "hello", hello
        return socket

    async def next(self, timeout: float = 10.0) -> dict[str, Any]:
        message = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        self.messages.append(message)
        return message

    async def wait_for(self, predicate: Any, timeout: float = 10.0) -> dict[str, Any]:
        for message in self.messages:
            if predicate(message):
                self.messages.remove(message)
                return message
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            message = await self.next(max(0.01, deadline - loop.time()))
            if predicate(message):
                self.messages.remove(message)
                return message

    async def event(self, type: str, timeout: float = 10.0, **match: Any) -> dict[str, Any]:
        return await self.wait_for(
            lambda m: m.get("type") == "event" and m["event"] == type and all(m["data"].get(k) == v for k, v in match.items()),
            timeout,
        )

    async def request(self, message: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
        ref = str(uuid.uuid4())
        await self.ws.send(json.dumps({**message, "ref": ref}))
        return await self.wait_for(lambda m: m.get("ref") == ref, timeout)

    async def close(self) -> None:
        await self.ws.close()
