"""Websocket plumbing shared by every live socket: resume by event id, then live events.

A client passes ``?after=N`` (the last event id it saw) when it connects and
gets every event for its audience after N, then live ones, each exactly once
and in order. A client too slow to keep up is closed with 1013 and resumes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from server import events, strict_input
from server.bus import Subscription
from dispatch.errors import DispatchError
from signaling.errors import SignalingError
from server.errors import ApiError, InvalidField, from_domain
from server.keys import BUS, POOL, WEBSOCKETS
from server.routing import dumps
from server.tasks import cancel_and_wait
from server.users import User

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 64 * 1024
# Inbound handler: a parsed JSON object in, an optional reply out; raise InvalidField to answer an error.
Inbound = Callable[[dict[str, Any]], Awaitable[dict[str, Any] | None]]


def audience_of(user: User) -> frozenset[str]:
    """The event audience tags a user receives."""
    tags = {f"role:{user.role.value}", f"user:{user.id}"}
    if user.unit_id:
        tags.add(f"unit:{user.unit_id}")
    if user.facility_code:
        tags.add(f"facility:{user.facility_code}")
    tags.update(f"specialty:{s}" for s in user.specialties)
    return frozenset(tags)


def resume_point(request: web.Request) -> int | None:
    raw = request.query.get("after")
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise InvalidField("must be a non-negative event id", field="after")
    return int(raw)


async def ping(message: dict[str, Any]) -> dict[str, Any] | None:
    if message.get("type") == "ping":
        return {"type": "pong"}
    raise InvalidField(f"unknown message type {message.get('type')!r}", field="type")


Greeting = Callable[[], Awaitable[dict[str, Any]]]


async def serve_socket(
    request: web.Request,
    audience: frozenset[str],
    on_message: Inbound = ping,
    *,
    greeting: Greeting | None = None,
    side: asyncio.Queue[dict[str, Any]] | None = None,
) -> web.WebSocketResponse:
    """Run a live socket: ``greeting`` adds state to the hello, ``side`` carries non-event messages (positions)."""
    after = resume_point(request)  # validated before the upgrade, so a bad value is a plain 422
    ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=MAX_MESSAGE_BYTES)
    await ws.prepare(request)
    request.app[WEBSOCKETS].add(ws)
    bus = request.app[BUS]
    sub = bus.subscribe(audience)  # before reading "now", so nothing falls between the two
    sender: asyncio.Task[None] | None = None
    try:
        if after is None:
            # No resume point: start from the newest committed event, not from what the bus has seen.
            after = await events.last_id(request.app[POOL])
        hello = {"type": "hello", "last_event_id": after}
        if greeting is not None:
            hello |= await greeting()
        await ws.send_json(hello, dumps=dumps)
        sender = asyncio.create_task(_send_events(request, ws, sub, audience, after, side))
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                await ws.send_json(_error("bad_request", "send JSON text messages", None))
                continue
            await _handle(ws, msg.data, on_message)
    finally:
        request.app[WEBSOCKETS].discard(ws)
        await cancel_and_wait(sender)
        bus.unsubscribe(sub)
    return ws


def _error(code: str, message: str, field: str | None) -> dict[str, Any]:
    return {"type": "error", "error": {"code": code, "message": message, "field": field}}


async def _handle(ws: web.WebSocketResponse, text: str, on_message: Inbound) -> None:
    try:
        message = strict_input.loads(text, what="message")
    except ApiError as exc:
        await ws.send_json(_error(exc.code, exc.message, exc.field))
        return
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        await ws.send_json(_error("invalid", "a message is a JSON object with a string 'type'", "type"))
        return
    try:
        reply = await on_message(message)
    except (ApiError, DispatchError, SignalingError) as exc:
        # A refused message changes nothing and the socket stays open.
        error = exc if isinstance(exc, ApiError) else from_domain(exc)
        reply = {**_error(error.code, error.message, error.field), "ref": message.get("ref")}
    if reply is not None:
        await ws.send_json(reply, dumps=dumps)


async def _send_events(
    request: web.Request, ws: web.WebSocketResponse, sub: Subscription, audience: frozenset[str], after: int,
    side: asyncio.Queue[dict[str, Any]] | None,
) -> None:
    pool = request.app[POOL]
    sent = after
    try:
        while True:
            batch = await events.since(pool, sent, audience, limit=500)
            for event in batch:
                await ws.send_json(event.wire(), dumps=dumps)
                sent = event.id
            if len(batch) < 500:
                break
        overflow = asyncio.ensure_future(sub.overflowed.wait())
        get = asyncio.ensure_future(sub.queue.get())
        side_get = asyncio.ensure_future(side.get()) if side is not None else None
        try:
            while True:
                waiting = {overflow, get} | ({side_get} if side_get is not None else set())
                done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                if overflow in done:
                    await ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"too slow; resume with ?after")
                    return
                if get in done:
                    event = get.result()
                    if event.id > sent:
                        await ws.send_json(event.wire(), dumps=dumps)
                        sent = event.id
                    get = asyncio.ensure_future(sub.queue.get())
                if side_get is not None and side_get in done:
                    await ws.send_json(side_get.result(), dumps=dumps)
                    side_get = asyncio.ensure_future(side.get())  # type: ignore[union-attr]
        finally:
            for task in (overflow, get, side_get):
                if task is not None:
                    task.cancel()
    except (ConnectionResetError, RuntimeError):
        # The socket closed under us; the receiving side ends the handler.
        return
