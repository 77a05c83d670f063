"""A field phone's socket that stays heard from, as the field page keeps it."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

from tests.server.dispatch_support import Socket


@contextlib.asynccontextmanager
async def pinging(socket: Socket, every_s: float) -> AsyncIterator[None]:
    """Ping every ``every_s`` while inside, as the page does at ``dispatch.phone_ping_s``."""

    async def ping() -> None:
        while True:
            await socket.ws.send(json.dumps({"type": "ping"}))
            await asyncio.sleep(every_s)

    task = asyncio.create_task(ping())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
