"""The event bus: LISTEN for committed event ids, fan the events out to this process's subscribers.

Every server process runs one bus. A notification only wakes the bus; it then
reads every event after the last one it delivered, so a lost notification or
a dropped listener connection (database restart) costs latency, never events:
after reconnecting the bus catches up from the table.

Ids can become visible out of order (server/events.py): the bus delivers in id order
and stops before a missing id until it is settled. It notes which transactions hold
event ids at that moment; once they have all ended, the missing id is either there
or never will be (its commit failed), and the bus goes on past it. ``last_id`` is
therefore settled: every reader that stays at or below it misses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import asyncpg

from server import db, events
from server.events import Event
from server.groups import Groups
from server.mailbox import Flag, Mailbox
from server.outages import OutageLog
from server.tasks import cancel_and_wait

if TYPE_CHECKING:
    from server.metrics import Metrics

log = logging.getLogger(__name__)

LISTENER_NAME = "psc119 event bus"
# The listener's statements are planned once, generically. The read of the events after the last one is the index
# scan from that id whatever the id; but PostgreSQL's custom plan for a given id expects a row or two, cheaper on
# paper than the generic plan's third of the table, so it planned the read again at every execution (0.15 ms each
# under load, five times the read's own run) for the same plan. That one plan is made at the first read, at start-up:
# on a new database's log of a few rows a scan of the whole table and a sort cost least, and it was kept as the log
# grew, each read then scanning every event (a third of PostgreSQL's statement time under the dispatch benchmark)
# until an ANALYZE. Without sequential or bitmap scans (which read every event after the id, then sort) the plan is the
# index scan in id order at any size. The bus's other statements call parameterless functions.
LISTENER_SETTINGS = {"plan_cache_mode": "force_generic_plan", "enable_seqscan": "off", "enable_bitmapscan": "off"}
# While an id is missing the bus looks again this often: a failed commit sends no notification.
GAP_RECHECK_S = 0.02


@dataclasses.dataclass(frozen=True, slots=True)
class Gap:
    """Ids missing below ``below`` are settled once none of ``holders`` (transactions then numbering) runs."""

    below: int
    holders: list[str]


class Subscription:
    """A subscriber's queue of live events; overflowing it marks the subscriber as too slow."""

    __slots__ = ("audience", "queue", "overflowed", "on_offer")  # one per live socket

    def __init__(self, audience: Iterable[str] | None, maxsize: int) -> None:
        # None: every event (for in-process caches that must follow the whole log).
        self.audience = tuple(audience) if audience is not None else None  # iterated only; a tuple is the smallest
        self.queue: Mailbox[Event] = Mailbox(maxsize)
        self.overflowed = Flag()
        # Called after each offer: a reader that sends only when there is something to send, no task waiting.
        self.on_offer: Callable[[], None] | None = None

    def offer(self, event: Event) -> None:
        if self.overflowed.is_set():
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed.set()
        if self.on_offer is not None:
            self.on_offer()


class EventBus:
    def __init__(self, dsn: str, pool: asyncpg.Pool, metrics: Metrics, *, poll_s: float = 2.0, queue_size: int = 1000) -> None:
        self._dsn = dsn
        self._pool = pool
        self._metrics = metrics
        self._poll_s = poll_s
        self._queue_size = queue_size
        # By audience (None: subscribers to every event), so an event reaches its own audience without a scan.
        self._subscribers: Groups[str | None, Subscription] = Groups()  # a tag of one phone holds it alone
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._channels: dict[str, Callable[[str], None]] = {}
        self._hooks: list[Callable[[Event], None]] = []
        self.last_id = 0
        self._gap: Gap | None = None
        # `settled_id`: the callers the next read answers, and the task reading.
        self._settled_next: asyncio.Future[int] | None = None
        self._settled_reader: asyncio.Task[None] | None = None

    def listen(self, channel: str, callback: Callable[[str], None]) -> None:
        """Also LISTEN on ``channel`` (best effort: for data that is not an event, such as GPS fixes)."""
        self._channels[channel] = callback

    def before_delivery(self, hook: Callable[[Event], None]) -> None:
        """Call ``hook`` with each event before any subscriber gets it: for decisions that no later event
        may overtake (a revoked session's sockets close before anything committed after it is queued)."""
        self._hooks.append(hook)

    async def start(self) -> None:
        self.last_id = await events.last_id(self._pool)
        self._task = asyncio.create_task(self._run(), name="event-bus")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        await cancel_and_wait(self._settled_reader)

    async def settled_id(self) -> int:
        """`events.last_id`, read after this call began: a starting point for a reader that comes now. Callers who
        ask while a read is under way share the next one (a thousand phones reconnecting at once made ten reads, not
        a thousand, each waiting out the commits under way)."""
        if self._settled_next is None:
            self._settled_next = asyncio.get_running_loop().create_future()
            if self._settled_reader is None:
                self._settled_reader = asyncio.create_task(self._read_settled(), name="settled-event-id")
        return await asyncio.shield(self._settled_next)

    async def _read_settled(self) -> None:
        try:
            while (waiting := self._settled_next) is not None:
                self._settled_next = None
                try:
                    waiting.set_result(await events.last_id(self._pool))
                except asyncio.CancelledError:
                    waiting.cancel()
                    raise
                except Exception as exc:
                    waiting.set_exception(exc)
        finally:
            self._settled_reader = None

    def subscribe(self, audience: Iterable[str] | None) -> Subscription:
        sub = Subscription(audience, self._queue_size)
        for key in (None,) if sub.audience is None else sub.audience:
            self._subscribers.add(key, sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        for key in (None,) if sub.audience is None else sub.audience:
            self._subscribers.discard(key, sub)

    def _recipients(self, event: Event) -> set[Subscription]:
        """The subscriptions an event's audience reaches: looked up per audience, not tested one by one."""
        found = set(self._subscribers.get(None))
        for key in event.audience:
            found.update(self._subscribers.get(key))
        return found

    def _notified(self, *_: object) -> None:
        self._wake.set()

    async def _run(self) -> None:
        backoff = 0.1
        outage = OutageLog(log, "event bus", self._metrics)
        while True:
            con: asyncpg.Connection | None = None
            try:
                con = await listener(self._dsn)
                lost = asyncio.Event()

                def on_lost(_con: object, lost: asyncio.Event = lost) -> None:
                    lost.set()
                    self._wake.set()  # reconnect and catch up now, not at the next poll

                con.add_termination_listener(on_lost)
                await con.add_listener(events.CHANNEL, self._notified)
                for channel, callback in self._channels.items():
                    await con.add_listener(channel, _payload_only(callback))
                backoff = 0.1
                outage.succeeded()
                self._gap = None  # the transactions it named ended with the connection's server, or will be listed again
                await self._deliver(con)  # catch up on anything committed while not listening
                while not lost.is_set():
                    with contextlib.suppress(asyncio.TimeoutError):
                        async with asyncio.timeout(self._poll_s if self._gap is None else GAP_RECHECK_S):
                            await self._wake.wait()
                    self._wake.clear()
                    await self._deliver(con)
                    outage.succeeded()  # a delivery pass at least every poll_s: the bus's last success stays fresh
                outage.failed(ConnectionResetError("the listener connection was lost"))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the bus must outlive any failure: every socket depends on it
                outage.failed(exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                if con is not None and not con.is_closed():
                    con.terminate()

    async def _deliver(self, con: asyncpg.Connection) -> None:
        """Read on the bus's own connection: under load, the handlers' pool must not delay delivery."""
        settled_below = 0  # ids missing below this are settled: their commits failed
        while True:
            batch = await self._fetch_after(con, self.last_id)
            blocked = None
            for event in batch:
                if event.id > self.last_id + 1 and event.id > settled_below:
                    blocked = event
                    break
                self._hand_out(event)
            if blocked is not None:
                settled_below = await self._settle(con, blocked.id)
                if settled_below == 0:
                    return  # the ids are still being committed: their notification, or GAP_RECHECK_S, brings the bus back
            elif len(batch) < 500:
                self._gap = None
                return

    def _hand_out(self, event: Event) -> None:
        self._metrics.event_read(event.at)
        for hook in self._hooks:
            hook(event)
        for sub in self._recipients(event):
            sub.offer(event)
        self.last_id = event.id

    async def _settle(self, con: asyncpg.Connection, visible: int) -> int:
        """Ids between ``last_id`` and ``visible`` are missing: the bound below which they are settled, or 0 if not yet.

        Each missing id was handed out before ``visible`` was, so before the read that saw ``visible``; the
        transaction holding it has ended or is among those numbering now. Once those have all ended, a new read
        sees each of these ids or it never existed."""
        gap = self._gap
        if gap is None or gap.below <= self.last_id:
            gap = self._gap = Gap(visible, list(await con.fetchval("SELECT event_numberers()")))
            if not gap.holders:
                self._gap = None
                return gap.below
            return 0
        if await con.fetchval("SELECT $1::text[] && event_numberers()", gap.holders):
            return 0
        self._gap = None
        return gap.below

    @staticmethod
    async def _fetch_after(con: asyncpg.Connection, after: int) -> list[Event]:
        rows = await con.fetch(
            "SELECT id, at, type, audience, payload FROM events WHERE id > $1 ORDER BY id LIMIT 500", after
        )
        return [Event.from_row(r) for r in rows]


async def listener(dsn: str) -> asyncpg.Connection:
    """The bus's own connection: it listens, and reads the events as they are announced."""
    return await db.connect(dsn, LISTENER_NAME, LISTENER_SETTINGS)


def _payload_only(callback: Callable[[str], None]) -> Callable[[object, int, str, str], None]:
    def on_notify(_con: object, _pid: int, _channel: str, payload: str) -> None:
        callback(payload)

    return on_notify
