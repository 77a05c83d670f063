"""Closing the sockets of a revoked or expired session, on every server process.

A socket authenticated by a session (``/ws/events``, ``/ws/unit``, ``/ws/operator``, and a room socket,
through the session that asked for its join token) holds a `Guard` on it. The guard ends, and its socket
is closed with ``CLOSE_SESSION_ENDED`` (4401, reason ``session_revoked`` or ``session_expired``), when:

- the session is revoked: logout, ``psc119 user disable``, a change of the user's role, unit, facility or
  specialties. Each commits a ``session.revoked`` event (migration 0006), and every process's event bus
  hands each event to `Revocations.seen` before any subscriber gets it. So a revocation cannot be lost
  (the bus catches up from the table after a missed NOTIFY or a lost connection), and nothing committed
  after it can reach the socket first: later events are queued for the socket only after its guard ended.
- the session's ``expires_at`` passes: a timer per guard (expiry makes no event).

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
import logging
from collections.abc import Callable

import asyncpg

from server import sessions
from server.errors import Unauthorized
from server.events import Event

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

    __slots__ = ("session_id", "ended", "_owner", "_close", "_timer")  # one per live socket

    def __init__(self, owner: Revocations, session_id: int, close: Close) -> None:
        self.session_id = session_id
        self.ended: str | None = None
        self._owner = owner
        self._close = close
        self._timer: asyncio.TimerHandle | None = None

    def expire_in(self, seconds: float) -> None:
        self._timer = asyncio.get_running_loop().call_later(seconds, self.end, EXPIRED)

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
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._owner.forget(self)


class Revocations:
    """This process's guards by session, and the revocations seen since start (until those sessions expire)."""

    def __init__(self) -> None:
        self._guards: dict[int, set[Guard]] = {}
        self._revoked: dict[int, dt.datetime] = {}

    def guard(self, session_id: int, expires_at: dt.datetime, close: Close) -> Guard:
        """Watch a session for a socket; ``close(reason)`` runs once, when the session ends (maybe at once)."""
        guard = Guard(self, session_id, close)
        left = (expires_at - dt.datetime.now(dt.UTC)).total_seconds()
        if session_id in self._revoked:  # revoked after the handshake read it, before this socket registered
            guard.end(REVOKED)
        elif left <= 0:
            guard.end(EXPIRED)
        else:
            guard.expire_in(left)
            self._guards.setdefault(session_id, set()).add(guard)
        return guard

    def forget(self, guard: Guard) -> None:
        held = self._guards.get(guard.session_id)
        if held is not None:
            held.discard(guard)
            if not held:
                del self._guards[guard.session_id]

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
        guards = self._guards.pop(session_id, set())
        if guards:
            log.info("session %d revoked: closing %d socket(s)", session_id, len(guards))
        for guard in guards:
            guard.end(REVOKED)


def _expiry(value: object, now: dt.datetime) -> dt.datetime:
    """How long to remember a revocation: until the session would have expired anyway."""
    try:
        return dt.datetime.fromisoformat(value) if isinstance(value, str) else now + dt.timedelta(days=1)
    except ValueError:
        return now + dt.timedelta(days=1)
