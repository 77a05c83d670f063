"""GPS fixes: latest wins, written in batches, announced to every process, sampled into a track.

Fixes are not events. Each unit keeps its latest fix on its row; taking a fix in
only keeps it as its unit's newest (a fix that a newer one replaces before the
flush is superseded: only the newest position matters for ranking, and it is
counted in ``psc119_gps_fixes_superseded``). Every ``position_flush_s`` the
waiting fixes, at most ``position_flush_batch`` units at a time, are written,
sampled into the track and announced on a NOTIFY channel (ids and coordinates
only, in chunks under PostgreSQL's 8000-byte payload cap) by one statement on a
connection of the flush's own, so neither handlers holding the pool nor a
flood of fixes delays it: the more fixes come in, the more are superseded, and
the positions stay as fresh as the flush period. Every process, this one
included, applies the announcement to its fleet index and forwards it to its
operator sockets as one ``positions`` message: a few messages a second
however many units move (a socket that falls behind gets fewer, each with every
unit's newest position, never an older one).

The track keeps what it always kept: of the fixes written, one per unit every
``track_sample_s``; a flush that fails keeps its fixes for the next one.

A flush never waits for a unit's row: a dispatch or status change holding it keeps its
fix for the next flush. Waiting, the flush held every row it had written so far, so each
change on those units queued behind it, behind the change it waited for: under load,
one slow transaction held up a whole batch of units.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import asyncpg

from dispatch.geo import Point
from server import db, outages
from server.bus import EventBus
from server.config import DispatchSettings
from server.fleet import Fleet
from server.tasks import cancel_and_wait

if TYPE_CHECKING:
    from server.metrics import Metrics

log = logging.getLogger(__name__)

CHANNEL = "psc119_positions"
NOTIFY_MAX_BYTES = 7000
WRITE_TIMEOUT_S = 10.0
# One statement, so one round trip: the units' latest positions (never an older fix over a newer one), the
# sampled track, and the announcement of the positions that moved a unit (``$8`` of them a notification), all
# committed together; and the units whose rows another transaction holds (their fixes wait for the next flush).
FLUSH = """
WITH f AS (SELECT * FROM unnest($1::text[], $2::float8[], $3::float8[], $4::timestamptz[], $5::real[], $6::bool[])
                         AS f(id, lat, lon, at, accuracy, sampled)),
     free AS (SELECT f.* FROM f JOIN units u ON u.id = f.id ORDER BY u.id FOR NO KEY UPDATE OF u SKIP LOCKED),
     moved AS (UPDATE units u SET position_lat = free.lat, position_lon = free.lon, position_at = free.at FROM free
               WHERE u.id = free.id AND (u.position_at IS NULL OR u.position_at < free.at)
               RETURNING u.id, free.lat, free.lon, free.at),
     track AS (INSERT INTO unit_track (unit_id, at, lat, lon, accuracy)
               SELECT id, at, lat, lon, accuracy FROM free WHERE sampled ON CONFLICT DO NOTHING),
     chunked AS (SELECT *, (row_number() OVER (ORDER BY id) - 1) / $8 AS chunk FROM moved),
     announced AS (SELECT pg_notify($7, json_agg(json_build_array(id, lat, lon, extract(epoch FROM at)) ORDER BY id)::text)
                   FROM chunked GROUP BY chunk)
SELECT (SELECT count(*) FROM announced) AS notifications,
       ARRAY(SELECT id FROM f WHERE id NOT IN (SELECT id FROM free) AND EXISTS (SELECT FROM units WHERE units.id = f.id)) AS held
"""


@dataclasses.dataclass(frozen=True, slots=True)
class Fix:
    unit_id: str
    point: Point
    at: dt.datetime
    accuracy: float | None


class Positions:
    def __init__(self, dsn: str, fleet: Fleet, bus: EventBus, settings: DispatchSettings, metrics: Metrics) -> None:
        self._dsn = dsn
        self._con: asyncpg.Connection | None = None
        self._metrics = metrics
        self._fleet = fleet
        self._settings = settings
        self._pending: dict[str, Fix] = {}
        self._waiting_since = 0.0  # when the oldest waiting fix came in (monotonic)
        self._received = self._superseded = 0  # since they were last counted into the metrics
        self._last_sampled: dict[str, dt.datetime] = {}
        self._listeners: set[PositionFeed] = set()
        self._task: asyncio.Task[None] | None = None
        self._flushing = asyncio.Lock()  # one flush at a time on the one connection
        bus.listen(CHANNEL, self._on_notify)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="positions")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        try:
            await self.flush()  # accepted fixes are written before the process exits
        finally:
            self._disconnect()

    def submit(self, fix: Fix) -> None:
        self._received += 1
        if not self._keep(fix):
            self._superseded += 1
        # This process ranks from the fix at once; the others once the flush announces it.
        self._fleet.move(fix.unit_id, fix.point, fix.at)

    def drop_superseded(self) -> None:
        """A fix was dropped on its socket: a newer one of its unit was already waiting behind it."""
        self._received += 1
        self._superseded += 1

    def _keep(self, fix: Fix) -> bool:
        """Keep ``fix`` as its unit's waiting one; False if a waiting one was superseded (or ``fix`` is older)."""
        current = self._pending.get(fix.unit_id)
        if current is None:
            if not self._pending:
                self._waiting_since = time.monotonic()
            self._pending[fix.unit_id] = fix
            return True
        if fix.at >= current.at:
            self._pending[fix.unit_id] = fix
        return False

    def listen(self) -> PositionFeed:
        feed = PositionFeed()
        self._listeners.add(feed)
        return feed

    def unlisten(self, feed: PositionFeed) -> None:
        self._listeners.discard(feed)

    async def _run(self) -> None:
        await outages.every(self._settings.position_flush_s, self.flush, outages.OutageLog(log, "position flush", self._metrics))

    async def flush(self) -> None:
        """Write the fixes waiting now, ``position_flush_batch`` units a statement (later ones wait for the next)."""
        async with self._flushing:
            await self._flush()

    async def _flush(self) -> None:
        self._metrics.gps_taken(self._received, self._superseded)
        self._received = self._superseded = 0
        if not self._pending:
            return
        waiting, self._pending, since = sorted(self._pending.values(), key=lambda f: f.unit_id), {}, self._waiting_since
        size, held = self._settings.position_flush_batch, []
        for start in range(0, len(waiting), size):
            try:
                held += await self._write(waiting[start:start + size])  # sorted: one lock order for every process
            except BaseException:
                self._disconnect()
                self._wait_again(waiting[start:] + held, since)
                raise
        self._wait_again(held, since)
        self._metrics.gps_flush_delay.observe(time.monotonic() - since)

    def _wait_again(self, fixes: list[Fix], since: float) -> None:
        """Keep ``fixes``, waiting since ``since``, for the next flush, unless newer ones came in."""
        for fix in fixes:
            self._keep(fix)
        if fixes:
            self._waiting_since = min(since, self._waiting_since)

    async def _connection(self) -> asyncpg.Connection:
        if self._con is None or self._con.is_closed():
            self._con = await db.connect(self._dsn, name="psc119 positions")
        return self._con

    def _disconnect(self) -> None:
        if self._con is not None:
            self._con.terminate()
            self._con = None

    async def _write(self, fixes: list[Fix]) -> list[Fix]:
        """Write ``fixes``; those of units whose rows another transaction holds, not written."""
        sample_every = dt.timedelta(seconds=self._settings.track_sample_s)
        never = dt.datetime.min.replace(tzinfo=dt.UTC)
        sampled = [f.at - self._last_sampled.get(f.unit_id, never) >= sample_every for f in fixes]
        con = await self._connection()
        written = await con.fetchrow(
            FLUSH, [f.unit_id for f in fixes], [f.point.lat for f in fixes], [f.point.lon for f in fixes], [f.at for f in fixes],
            [f.accuracy for f in fixes], sampled, CHANNEL, _per_notification(fixes), timeout=WRITE_TIMEOUT_S,
        )
        held = set(written["held"])
        for f, sample in zip(fixes, sampled, strict=True):
            if sample and f.unit_id not in held:
                self._last_sampled[f.unit_id] = f.at
        return [f for f in fixes if f.unit_id in held]

    def _on_notify(self, payload: str) -> None:
        try:
            fixes = json.loads(payload)
            units = []
            for unit_id, lat, lon, epoch in fixes:
                at = dt.datetime.fromtimestamp(epoch, dt.UTC)
                self._fleet.move(unit_id, Point(lat, lon), at)
                units.append({"id": unit_id, "lat": lat, "lon": lon, "at": at.isoformat()})
        except (ValueError, TypeError):
            log.warning("ignored a malformed positions notification")
            return
        finally:
            self._fleet.settle()
        for feed in self._listeners:
            feed.offer(units)


class PositionFeed:
    """An operator socket's positions: each ``take`` gives every unit moved since the last one, at its newest.

    However far behind its socket falls, it holds one position per unit and drops none of the newest. It holds no
    waiter: ``on_offer`` is called when positions come (the socket then sends them)."""

    __slots__ = ("_units", "on_offer")

    def __init__(self) -> None:
        self._units: dict[str, dict[str, Any]] = {}
        self.on_offer: Callable[[], None] | None = None

    def offer(self, units: list[dict[str, Any]]) -> None:
        for unit in units:  # announced in commit order, and only forward: a later one is newer
            self._units[unit["id"]] = unit
        if units and self.on_offer is not None:
            self.on_offer()

    def take(self) -> dict[str, Any] | None:
        """The positions message for every unit moved since the last take; None if none moved."""
        if not self._units:
            return None
        units, self._units = self._units, {}
        return {"type": "positions", "units": list(units.values())}


def _per_notification(fixes: list[Fix]) -> int:
    """How many positions fit one notification: ``["id", lat, lon, epoch], `` is under 100 bytes besides the id."""
    return max(1, NOTIFY_MAX_BYTES // (max(len(json.dumps(f.unit_id)) for f in fixes) + 100))
