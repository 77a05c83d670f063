"""Closing the sockets of a revoked or expired session, on every server process.

A socket authenticated by a session (``/ws/events``, ``/ws/unit``, ``/ws/operator``, and a room socket,
through the session that asked for its join token) holds a `Guard` on it. The guard ends, and its socket
is closed with ``CLOSE_SESSION_ENDED`` (4401, reason ``session_revoked`` or ``session_expired``), when:

- the session is revoked: logout, ``psc119 user disable``, a change of the user's role, unit, facility or
  specialties. Each commits a ``session.revoked`` event (migration 0006), and every process's event bus
  hands each event to `Revocations.seen` before any subscriber gets it. So a revocation cannot be lost
  (the bus catches up from the table after a missed NOTIFY or a lost connection), and nothing committed
  after it can reach the socket first: later events are queued for the socket only after its guard ended.
- the session's ``expires_at`` passes (expiry makes no event). A session's expiry is fixed when it is made, so
  the process keeps one timer for all its sessions, at the earliest expiry among them, rather than one per
  socket: thousands of idle sockets would each hold a timer handle, its callback and a context, and every one
  of them lengthens each full garbage collection.

The close is the guarantee; inbound messages add two cheap checks. Every message on an ended guard is
refused. A message that changes state (an ack, a status, a chat, a consent) also re-reads the session
(`Guard.confirm`: one primary-key read, as every HTTP request does; a phone's ack or status reads it in
its own transaction and is refused with `SessionEnded`), so it is refused even in the milliseconds before
this process has seen a revocation another process committed; high-rate messages (GPS fixes, signaling,
pings) rely on the close alone.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import heapq
import logging
from collections.abc import Callable

import asyncpg

from server import sessions
from server.errors import Unauthorized
from server.events import Event
from server.groups import Groups

log = logging.getLogger(__name__)

# The session behind the socket was revoked or has expired: sign in again; reconnecting cannot help.
CLOSE_SESSION_ENDED = 4401
REVOKED = "session_revoked"
EXPIRED = "session_expired"
# Appended by migration 0006's trigger with the audience "server:sessions", which no client holds.
EVENT = "session.revoked"

Close = Callable[[str], None]


class SessionEnded(Unauthorized):
    """A change found, in its own transaction, that the session behind it has ended: refused, changing nothing."""

    def __init__(self) -> None:
        super().__init__("the session has ended; sign in again")


class Guard:
    """One socket's hold on its session; ``ended`` is the reason once the session is revoked or expired."""

    __slots__ = ("session_id", "ended", "_owner", "_close")  # one per live socket

    def __init__(self, owner: Revocations, session_id: int, close: Close) -> None:
        self.session_id = session_id
        self.ended: str | None = None
        self._owner = owner
        self._close = close

    def end(self, reason: str) -> None:
        if self.ended is not None:
            return
        self.ended = reason
        self.release()
        self._close(reason)

    async def confirm(self, db: asyncpg.Pool | asyncpg.Connection) -> bool:
        """Whether the session is live, read from the database; ends the guard if it is not."""
        if self.ended is None and not await sessions.is_live(db, self.session_id):
            self.end(REVOKED)
        return self.ended is None

    def release(self) -> None:
        """The socket is done: stop watching its session."""
        self._owner.forget(self)


class Revocations:
    """This process's guards by session, and the revocations seen since start (until those sessions expire).

    Guards are grouped by session (`server.groups`: a phone's session holds its one guard alone). Expiry is a heap
    of (event loop time, session id), one entry per session from its first guard on, under one timer set for the
    earliest; an entry whose session holds no guard any more is dropped when it comes due, or when such entries
    outnumber the live ones (a phone reconnecting all day long)."""

    def __init__(self) -> None:
        self._guards: Groups[int, Guard] = Groups()
        self._revoked: dict[int, dt.datetime] = {}
        self._expiring: list[tuple[float, int]] = []
        self._timer: asyncio.TimerHandle | None = None

    def guard(self, session_id: int, expires_at: dt.datetime, close: Close) -> Guard:
        """Watch a session for a socket; ``close(reason)`` runs once, when the session ends (maybe at once)."""
        guard = Guard(self, session_id, close)
        left = (expires_at - dt.datetime.now(dt.UTC)).total_seconds()
        if session_id in self._revoked:  # revoked after the handshake read it, before this socket registered
            guard.end(REVOKED)
        elif left <= 0:
            guard.end(EXPIRED)
        elif self._guards.add(session_id, guard):
            self._expire_in(session_id, left)
        return guard

    def forget(self, guard: Guard) -> None:
        self._guards.discard(guard.session_id, guard)

    def seen(self, event: Event) -> None:
        """The event bus's hook: end the guards of a revoked session before any later event is delivered."""
        if event.type != EVENT:
            return
        session_id = event.payload.get("session")
        if not isinstance(session_id, int):
            return
        now = dt.datetime.now(dt.UTC)
        self._revoked = {s: until for s, until in self._revoked.items() if until > now}
        self._revoked[session_id] = _expiry(event.payload.get("expires_at"), now)
        guards = self._guards.pop(session_id)
        if guards:
            log.info("session %d revoked: closing %d socket(s)", session_id, len(guards))
        for guard in guards:
            guard.end(REVOKED)

    def _expire_in(self, session_id: int, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        when = loop.time() + seconds
        if len(self._expiring) > 2 * len(self._guards) + 64:
            self._expiring = [(at, s) for at, s in self._expiring if s in self._guards]
            heapq.heapify(self._expiring)
        heapq.heappush(self._expiring, (when, session_id))
        if self._timer is None or when < self._timer.when():  # the earliest now: the timer moves
            if self._timer is not None:
                self._timer.cancel()
            self._timer = loop.call_at(when, self._expire)

    def _expire(self) -> None:
        """The timer: end the guards of every session whose expiry has come, then wait for the next."""
        self._timer = None
        loop = asyncio.get_running_loop()
        while self._expiring and self._expiring[0][0] <= loop.time():
            _, session_id = heapq.heappop(self._expiring)
            for guard in self._guards.pop(session_id):
                guard.end(EXPIRED)
        if self._expiring:
            self._timer = loop.call_at(self._expiring[0][0], self._expire)


def _expiry(value: object, now: dt.datetime) -> dt.datetime:
    """How long to remember a revocation: until the session would have expired anyway."""
    try:
        return dt.datetime.fromisoformat(value) if isinstance(value, str) else now + dt.timedelta(days=1)
    except ValueError:
        return now + dt.timedelta(days=1)
