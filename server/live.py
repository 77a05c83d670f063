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
import sys
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aiohttp import WSCloseCode, WSMessage, WSMsgType, web

from dispatch.errors import DispatchError
from server import events, socket_limits, strict_input
from server.errors import ApiError, BadRequest, InvalidField, from_domain
from server.events import Event
from server.keys import BUS, CONFIG, METRICS, POOL, REVOCATIONS, SESSION, WEBSOCKETS
from server.metrics import socket_kind
from server.revocation import CLOSE_SESSION_ENDED, REVOKED, Guard, SessionEnded
from server.routing import dumps
from server.tasks import cancel_and_wait
from server.upgraded import ENDED, LiveSocket, upgrade
from server.users import User
from signaling.errors import SignalingError

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 64 * 1024
HEARTBEAT_S = 20.0  # a live socket is pinged this often; one that does not answer within half of it is closed
# Inbound handler: a parsed JSON object in, an optional reply out; raise InvalidField to answer an error.
Inbound = Callable[[dict[str, Any]], Awaitable[dict[str, Any] | None]]


def audience_of(user: User, *more: str) -> tuple[str, ...]:
    """The event audience tags a user receives (and ``more``): a tuple of interned strings, as each live socket
    holds its own (a tuple of three is 64 bytes, a frozenset 216, and every socket of a role or a user shares its
    tags' strings rather than holding copies)."""
    tags = {f"role:{user.role.value}", f"user:{user.id}", *more}
    if user.unit_id:
        tags.add(f"unit:{user.unit_id}")
    if user.facility_code:
        tags.add(f"facility:{user.facility_code}")
    tags.update(f"specialty:{s}" for s in user.specialties)
    return tuple(sys.intern(tag) for tag in sorted(tags))


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


class Feed(Protocol):
    """Non-event messages for a socket (the console's positions): ``on_offer`` is called when some come."""

    on_offer: Callable[[], None] | None

    def take(self) -> dict[str, Any] | None: ...


class SocketKind:
    """What a kind of live socket adds to `serve_socket`; this one (the event socket's) adds nothing.

    One object per socket whose methods the socket calls, rather than closures: thousands of idle sockets each
    hold it. ``greeting`` adds state to the hello, ``side`` carries non-event messages (positions), ``horizon``
    gives the last event id this socket may not replay (a resume point before it starts after it), ``cheap``
    names the inbound types that change no state (no database check of the session for them), ``confirmed``
    those whose change reads the session in its own transaction (`server.revocation.SessionEnded`), ``compress``
    accepts permessage-deflate when the client offers it: a deflate context costs ~100 KiB a socket, worth it
    only where large batches go to few sockets (the consoles' positions), not on thousands of phones; a frame
    that a newer one already waiting replaces is dropped unanswered, undecoded: ``superseded`` tells it, giving
    what to count it as against the rate limits (`server.superseded`). ``closed`` runs once the socket is."""

    __slots__ = ()
    cheap: frozenset[str] = frozenset({"ping"})
    confirmed: frozenset[str] = frozenset()
    compress = False
    side: Feed | None = None

    async def greeting(self, resumed: int | None) -> dict[str, Any]:
        """``resumed``: the event the socket resumes after (no earlier than its horizon), None if it did not."""
        return {}

    async def horizon(self) -> int | None:
        return None

    async def on_message(self, message: dict[str, Any]) -> dict[str, Any] | None:
        return await ping(message)

    def superseded(self, ws: web.WebSocketResponse, frame: WSMessage) -> dict[str, Any] | None:
        return None

    async def closed(self) -> None:
        return None


EVENTS = SocketKind()


async def serve_socket(request: web.Request, audience: tuple[str, ...], kind: SocketKind = EVENTS) -> web.WebSocketResponse:
    """Upgrade to a live socket of ``kind``; it runs after the handler returns it (`server.upgraded`), and ``kind``
    is closed when it ends (also when the upgrade fails)."""
    try:
        after = resume_point(request)  # validated before the upgrade, so a bad value is a plain 422
        ws = LiveSocket(heartbeat=HEARTBEAT_S, max_msg_size=MAX_MESSAGE_BYTES, compress=kind.compress)
        await upgrade(ws, request)
    except BaseException:
        await kind.closed()
        raise
    return ws.live(_Socket(request, ws, audience, kind, after).run)


class _Socket:
    """One open live socket: resume, then live events out and messages in, until it closes."""

    __slots__ = ("request", "ws", "audience", "kind", "after", "sub", "subscribed", "guard", "closing", "sending", "sent")

    def __init__(self, request: web.Request, ws: web.WebSocketResponse, audience: tuple[str, ...], kind: SocketKind, after: int | None) -> None:
        self.request, self.ws, self.audience, self.kind, self.after = request, ws, audience, kind, after
        self.sent = 0  # the id of the last event sent
        self.closing: asyncio.Task[None] | None = None  # closing the socket with 4401, once its session ends
        self.sending: asyncio.Task[None] | None = None  # only while there is something to send

    async def run(self) -> None:
        request, ws, kind = self.request, self.ws, self.kind
        app = request.app
        app[WEBSOCKETS].add(ws)
        metric = socket_kind(request)
        app[METRICS].socket(metric, +1)
        bus = app[BUS]
        self.sub = bus.subscribe(self.audience)  # before reading "now", so nothing falls between the two
        self.subscribed = bus.last_id  # every later event comes queued
        session = request[SESSION]
        self.guard = app[REVOCATIONS].guard(session.id, session.expires_at, self._end)
        try:
            after = resumed = self.after
            if after is None:
                # No resume point: start from the newest committed event, not from what the bus has seen.
                after = await bus.settled_id()
            elif (horizon := await kind.horizon()) is not None:
                after = resumed = max(after, horizon)
            if not await _greet(ws, after, resumed, kind, self.guard):
                return  # revoked while greeting: closed with 4401, never welcomed
            self.after = self.sent = after
            self.sending = asyncio.create_task(self._send())
            self.sub.on_offer = self._offered
            if kind.side is not None:
                kind.side.on_offer = self._offered
            limits = socket_limits.live_limits(app[CONFIG].limits)
            while (msg := await ws.receive()).type not in ENDED:
                stand_in = kind.superseded(ws, msg)
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
                await _handle(ws, message, self._inbound)
        finally:
            app[WEBSOCKETS].discard(ws)
            app[METRICS].socket(metric, -1)
            self.guard.release()
            self.sub.on_offer = None
            if kind.side is not None:
                kind.side.on_offer = None
            bus.unsubscribe(self.sub)
            # Finished even if the handler is cancelled meanwhile (its connection lost, with handler cancellation):
            # a phone's presence must be closed.
            await asyncio.shield(self._finish())

    async def _finish(self) -> None:
        await cancel_and_wait(self.sending)
        if self.closing is not None:
            await self.closing  # the close frame with 4401 is out; let the closing handshake finish
        await self.kind.closed()

    def _end(self, reason: str) -> None:
        """The session ended: close with 4401, once."""
        if self.closing is None:
            self.closing = asyncio.create_task(_close_ended(self.ws, reason))

    async def _inbound(self, message: dict[str, Any]) -> dict[str, Any] | None:
        """The kind's ``on_message`` for a live session only: re-read from the database before a message that
        changes state, unless its change reads the session itself (``confirmed``)."""
        guard, kind = self.guard, self.kind
        kind_of = message.get("type")
        if guard.ended is None and kind_of not in kind.cheap and kind_of not in kind.confirmed:
            await guard.confirm(self.request.app[POOL])
        if guard.ended is not None:
            raise SessionEnded()
        try:
            return await kind.on_message(message)
        except SessionEnded:
            guard.end(REVOKED)
            raise

    def _offered(self) -> None:
        """An event or positions are waiting: send them, unless a sender is at work already (it takes all)."""
        if self.sending is None and self.guard.ended is None:
            self.sending = asyncio.create_task(self._send())

    async def _send(self) -> None:
        """The backlog (on the first run), then whatever waits: queued events, the console's positions."""
        side = self.kind.side
        try:
            if self.after is not None:
                await self._backlog()
            while await self._drain() and side is not None and (positions := side.take()) is not None:
                await self.ws.send_json(positions, dumps=dumps)
        except (ConnectionResetError, RuntimeError):
            # The socket closed under us; the receiving side ends the handler.
            return
        finally:
            self.sending = None  # a finished task is still a few hundred bytes an idle socket would keep

    async def _backlog(self) -> None:
        """Every event after the resume point that the bus had handled when the socket subscribed; later ones come queued."""
        app = self.request.app
        pool, bus = app[POOL], app[BUS]
        while self.sent < self.subscribed:  # a socket that starts at the newest event reads nothing
            batch = await events.since(pool, self.sent, self.audience, limit=500)
            # Never ahead of the bus: an event it has not handled yet may follow a revocation; it comes live.
            batch = [event for event in batch if event.id <= bus.last_id]
            for event in batch:
                if self.guard.ended is not None:
                    return
                await self.ws.send_str(event.text)
                self.sent = event.id
            if len(batch) < 500:
                break
        self.after = None  # once: a later run of the sender sends what is queued only

    async def _drain(self) -> bool:
        """Send every queued event; False once the socket is done for (too slow, or its session ended). The queue
        only overflows while full, so the flag is seen at the next event."""
        sub = self.sub
        while not sub.queue.empty():
            event = sub.queue.get_nowait()
            if sub.overflowed.is_set():
                await _too_slow(self.ws)
                return False
            if self.guard.ended is not None:
                return False
            await self._send_live(event)
        return True

    async def _send_live(self, event: Event) -> None:
        """Send a live event unless the backlog had it."""
        if event.id <= self.sent:
            return
        await self.ws.send_str(event.text)
        self.request.app[METRICS].event_sent(event.at)
        self.sent = event.id


async def _greet(ws: web.WebSocketResponse, after: int, resumed: int | None, kind: SocketKind, guard: Guard) -> bool:
    """Send the hello, False if the session ended meanwhile. Its own frame: a phone's greeting is KiBs that no
    idle socket should keep."""
    hello = {"type": "hello", "last_event_id": after} | await kind.greeting(resumed)
    if guard.ended is not None:
        return False
    await ws.send_json(hello, dumps=dumps)
    return True


async def _close_ended(ws: web.WebSocketResponse, reason: str) -> None:
    with contextlib.suppress(ConnectionResetError, RuntimeError):
        await ws.close(code=CLOSE_SESSION_ENDED, message=reason.encode())


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


async def _too_slow(ws: web.WebSocketResponse) -> None:
    await ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"too slow; resume with ?after")
