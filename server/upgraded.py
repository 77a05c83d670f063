"""The websocket upgrade, keeping nothing of the handshake that an open socket no longer needs."""

from __future__ import annotations

from aiohttp import web


async def upgrade(ws: web.WebSocketResponse, request: web.Request) -> None:
    """Send the 101 (with the security headers every response carries), then let go of the response's headers: sent
    once, they would otherwise stay with the socket for as long as it is open (~1 KiB each, thousands of sockets)."""
    await ws.prepare(request)
    ws.headers.clear()
