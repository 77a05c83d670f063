"""Relaying a member's room websocket to the server process that holds the room (see `server.room_owners`).

The member stays connected to this process; every frame passes unchanged both ways,
and whichever side closes first closes the other with the same code, so a refusal, a
replaced connection or the end of the consult reaches the member exactly as if it
had connected to the owner. An owner that cannot be reached, or that goes away,
closes the member's socket with 1013 (try again later): its client rejoins, and by
then the room is held by a live process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import websockets
from aiohttp import WSMsgType, web

from signaling.peer import room_url

log = logging.getLogger(__name__)

# Marks a relayed connection, so the receiving process never relays it a second time.
RELAYED_HEADER = "X-PSC119-Relayed"
TRY_AGAIN = 1013


def _sendable(code: int | None) -> bool:
    """Whether a close code may be passed on in a close frame (1005, 1006 and 1015 only describe a connection)."""
    return code is not None and (code in (1000, 1001, 1008, 1011, 1012, 1013) or 3000 <= code <= 4999)


async def relay(ws: web.WebSocketResponse, owner_url: str, consult_id: str, first: str | bytes, max_frame_bytes: int) -> None:
    """Pass ``first`` (the member's join) and then every frame between ``ws`` and the owner, until either closes."""
    try:
        upstream = await websockets.connect(
            room_url(owner_url, consult_id), additional_headers={RELAYED_HEADER: "1"},
            max_size=max_frame_bytes, open_timeout=5, compression=None, proxy=None,
        )
    except (OSError, TimeoutError, websockets.WebSocketException) as exc:
        log.warning("room %s: its server at %s cannot be reached: %s", consult_id, owner_url, exc)
        await ws.close(code=TRY_AGAIN, message=b"the room's server cannot be reached; try again")
        return
    to_member = asyncio.create_task(_to_member(upstream, ws), name=f"room-relay-{consult_id}")
    try:
        await upstream.send(first)
        async for msg in ws:
            if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                await upstream.send(msg.data)
    except websockets.ConnectionClosed:
        pass  # the owner closed first: _to_member closes the member's socket with its code
    finally:
        code = ws.close_code
        await upstream.close(code=code if code is not None and _sendable(code) else 1001, reason="member left")
        await to_member


async def _to_member(upstream: websockets.ClientConnection, ws: web.WebSocketResponse) -> None:
    with contextlib.suppress(websockets.ConnectionClosed):
        async for message in upstream:
            with contextlib.suppress(ConnectionResetError, RuntimeError):
                if isinstance(message, str):
                    await ws.send_str(message)
                else:
                    await ws.send_bytes(message)
    code, reason = upstream.close_code, upstream.close_reason or ""
    if code is None or not _sendable(code):
        code, reason = TRY_AGAIN, "the room's server went away; try again"
    with contextlib.suppress(ConnectionResetError, RuntimeError):
        await ws.close(code=code, message=reason.encode())
