"""Websocket plumbing shared by every live socket: resume by event id, then live events.

A client passes ``?after=N`` (the last event id it saw) when it connects and
gets every event for its audience after N, then live ones, each exactly once
and in order. A client too slow to keep up is closed with 1013 and resumes.

Each socket holds a guard on its session (`server.revocation`): when the session
is revoked (logout, user disabled, role or unit changed) or expires, the socket is
closed with 4401 (reason ``session_revoked`` or ``session_expired``) on whichever
process it is, and no event committed after the revocation reaches it: the backlog
never runs ahead of the event bus, which ends the guard before it queues any later
event. A client must not reconnect after 4401: its token is dead. Every message
on an ended session is refused; one that changes state (any type but ``cheap``
ones such as GPS fixes and pings) first re-reads the session from the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aiohttp import WSCloseCode, WSMessage, WSMsgType, web

from dispatch.errors import DispatchError
from server import events, socket_limits, strict_input
from server.bus import Subscription
from server.errors import ApiError, BadRequest, InvalidField, from_domain
from server.events import Event
from server.keys import BUS, CONFIG, METRICS, POOL, REVOCATIONS, SESSION, WEBSOCKETS
from server.metrics import socket_kind
from server.revocation import CLOSE_SESSION_ENDED, REVOKED, Guard, SessionEnded
from server.routing import dumps
from server.tasks import cancel_and_wait
from server.upgraded import upgrade
from server.users import User
from signaling.errors import SignalingError

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


class Feed(Protocol):
    """Non-event messages for a socket (the console's positions)."""

    async def get(self) -> dict[str, Any]: ...


async def serve_socket(
    request: web.Request,
    audience: frozenset[str],
    on_message: Inbound = ping,
    *,
    greeting: Greeting | None = None,
    side: Feed | None = None,
    horizon: Callable[[], Awaitable[int]] | None = None,
    cheap: frozenset[str] = frozenset({"ping"}),
    confirmed: frozenset[str] = frozenset(),
    compress: bool = False,
    superseded: Callable[[web.WebSocketResponse, WSMessage], dict[str, Any] | None] | None = None,
) -> web.WebSocketResponse:
    """Run a live socket: ``greeting`` adds state to the hello, ``side`` carries non-event messages (positions),
    ``horizon`` gives the last event id this socket may not replay (a resume point before it starts after it),
    ``cheap`` names the inbound types that change no state (no database check of the session for them),
    ``confirmed`` those whose change reads the session in its own transaction (`server.revocation.SessionEnded`),
    ``compress`` accepts permessage-deflate when the client offers it: a deflate context costs ~100 KiB a socket,
    worth it only where large batches go to few sockets (the consoles' positions), not on thousands of phones;
    a frame that a newer one already waiting replaces is dropped unanswered, undecoded: ``superseded`` tells it,
    giving what to count it as against the rate limits (`server.superseded`)."""
    after = resume_point(request)  # validated before the upgrade, so a bad value is a plain 422
    ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=MAX_MESSAGE_BYTES, compress=compress)
    await upgrade(ws, request)
    request.app[WEBSOCKETS].add(ws)
    request.app[METRICS].socket(socket_kind(request), +1)
    bus = request.app[BUS]
    sub = bus.subscribe(audience)  # before reading "now", so nothing falls between the two
    session, closing = request[SESSION], []  # the task closing the socket with 4401, once its session ends
    guard = request.app[REVOCATIONS].guard(
        session.id, session.expires_at, lambda reason: closing.append(asyncio.create_task(_close_ended(ws, reason))),
    )
    sender: asyncio.Task[None] | None = None
    try:
        if after is None:
            # No resume point: start from the newest committed event, not from what the bus has seen.
            after = await events.last_id(request.app[POOL])
        elif horizon is not None:
            after = max(after, await horizon())
        if not await _greet(ws, after, greeting, guard):
            return ws  # revoked while greeting: closed with 4401, never welcomed
        sender = asyncio.create_task(_send_events(request, ws, sub, audience, after, side, guard))
        inbound = _checked(request, guard, on_message, cheap | confirmed)
        limits = socket_limits.live_limits(request.app[CONFIG].limits)
        async for msg in ws:
            stand_in = superseded(ws, msg) if superseded is not None else None
            message = _decode(msg) if stand_in is None else stand_in
            if (refusal := limits.over(message)) is not None:
                await ws.send_json(_error("rate_limited", refusal, "type"))
                await ws.close(code=socket_limits.CLOSE_CODE, message=socket_limits.CLOSE_REASON)
                break
            if isinstance(message, ApiError):
                await ws.send_json(_error(message.code, message.message, message.field))
                continue
            if stand_in is not None:
                continue
            await _handle(ws, message, inbound)
    finally:
        request.app[WEBSOCKETS].discard(ws)
        request.app[METRICS].socket(socket_kind(request), -1)
        guard.release()
        await cancel_and_wait(sender)
        if closing:
            await closing[0]  # the close frame with 4401 is out; let the closing handshake finish
        bus.unsubscribe(sub)
    return ws


async def _greet(ws: web.WebSocketResponse, after: int, greeting: Greeting | None, guard: Guard) -> bool:
    """Send the hello, False if the session ended meanwhile. Its own frame: a phone's greeting is KiBs that no
    idle socket should keep."""
    hello = {"type": "hello", "last_event_id": after}
    if greeting is not None:
        hello |= await greeting()
    if guard.ended is not None:
        return False
    await ws.send_json(hello, dumps=dumps)
    return True


async def _close_ended(ws: web.WebSocketResponse, reason: str) -> None:
    with contextlib.suppress(ConnectionResetError, RuntimeError):
        await ws.close(code=CLOSE_SESSION_ENDED, message=reason.encode())


def _checked(request: web.Request, guard: Guard, on_message: Inbound, unread: frozenset[str]) -> Inbound:
    """``on_message`` for a live session only: re-read from the database before a message that changes state,
    unless its type is ``unread`` (it changes nothing, or its change reads the session itself)."""

    async def checked(message: dict[str, Any]) -> dict[str, Any] | None:
        if guard.ended is None and message.get("type") not in unread:
            await guard.confirm(request.app[POOL])
        if guard.ended is not None:
            raise SessionEnded()
        try:
            return await on_message(message)
        except SessionEnded:
            guard.end(REVOKED)
            raise

    return checked


def _error(code: str, message: str, field: str | None) -> dict[str, Any]:
    return {"type": "error", "error": {"code": code, "message": message, "field": field}}


def _decode(msg: WSMessage) -> dict[str, Any] | ApiError:
    """A frame through the strict decoder (once): a JSON object with a string type, or the refusal to answer."""
    if msg.type != WSMsgType.TEXT:
        return BadRequest("send JSON text messages")
    try:
        message = strict_input.loads(msg.data, what="message")
    except ApiError as exc:
        return exc
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        return InvalidField("a message is a JSON object with a string 'type'", field="type")
    return message


async def _handle(ws: web.WebSocketResponse, message: dict[str, Any], on_message: Inbound) -> None:
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
    side: Feed | None, guard: Guard,
) -> None:
    pool, bus = request.app[POOL], request.app[BUS]
    sent = after
    try:
        while True:
            batch = await events.since(pool, sent, audience, limit=500)
            # Never ahead of the bus: an event it has not handled yet may follow a revocation; it comes live.
            batch = [event for event in batch if event.id <= bus.last_id]
            for event in batch:
                if guard.ended is not None:
                    return
                await ws.send_str(event.text)
                sent = event.id
            if len(batch) < 500:
                break
        if side is None:
            # One awaited queue and no helper tasks: what thousands of idle phone sockets hold. The queue only
            # overflows while full, so the flag is seen at the next event.
            while True:
                event = await sub.queue.get()
                if sub.overflowed.is_set():
                    await _too_slow(ws)
                    return
                if guard.ended is not None:
                    return
                sent = await _send_live(request, ws, event, sent)
        overflow = asyncio.ensure_future(sub.overflowed.wait())
        get = asyncio.ensure_future(sub.queue.get())
        side_get = asyncio.ensure_future(side.get()) if side is not None else None
        try:
            while True:
                waiting = {overflow, get} | ({side_get} if side_get is not None else set())
                done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                if overflow in done:
                    await _too_slow(ws)
                    return
                if guard.ended is not None:
                    return
                if get in done:
                    sent = await _send_live(request, ws, get.result(), sent)
                    get = asyncio.ensure_future(sub.queue.get())
                if side_get is not None and side_get in done:
                    await ws.send_json(side_get.result(), dumps=dumps)
                    side_get = asyncio.ensure_future(side.get())
        finally:
            for task in (overflow, get, side_get):
                if task is not None:
                    task.cancel()
    except (ConnectionResetError, RuntimeError):
        # The socket closed under us; the receiving side ends the handler.
        return


async def _send_live(request: web.Request, ws: web.WebSocketResponse, event: Event, sent: int) -> int:
    """Send a live event unless the backlog had it; the id sent last."""
    if event.id <= sent:
        return sent
    await ws.send_str(event.text)
    request.app[METRICS].event_sent(event.at)
    return event.id


async def _too_slow(ws: web.WebSocketResponse) -> None:
    await ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"too slow; resume with ?after")
