"""GPS fixes: latest wins, written in batches, announced to every process, sampled into a track.

Fixes are not events. Each unit keeps its latest fix on its row; every
``position_flush_s`` the fixes received since the last flush are written in one
statement and announced on a NOTIFY channel (ids and coordinates only, in
chunks under PostgreSQL's 8000-byte payload cap). Every process, this one
included, applies the announcement to its fleet index and forwards it to its
operator sockets as one ``positions`` message: a few messages a second
however many units move.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import logging
from typing import TYPE_CHECKING, Any

import asyncpg

from dispatch.geo import Point
from server import outages
from server.bus import EventBus
from server.config import DispatchSettings
from server.fleet import Fleet
from server.tasks import cancel_and_wait

if TYPE_CHECKING:
    from server.metrics import Metrics

log = logging.getLogger(__name__)

CHANNEL = "psc119_positions"
NOTIFY_MAX_BYTES = 7000


@dataclasses.dataclass(frozen=True, slots=True)
class Fix:
    unit_id: str
    point: Point
    at: dt.datetime
    accuracy: float | None


class Positions:
    def __init__(self, pool: asyncpg.Pool, fleet: Fleet, bus: EventBus, settings: DispatchSettings, metrics: Metrics) -> None:
        self._pool = pool
        self._metrics = metrics
        self._fleet = fleet
        self._settings = settings
        self._pending: dict[str, Fix] = {}
        self._last_sampled: dict[str, dt.datetime] = {}
        self._listeners: set[asyncio.Queue[dict[str, Any]]] = set()
        self._task: asyncio.Task[None] | None = None
        bus.listen(CHANNEL, self._on_notify)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="positions")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        await self.flush()  # accepted fixes are written before the process exits

    def submit(self, fix: Fix) -> None:
        current = self._pending.get(fix.unit_id)
        if current is None or fix.at >= current.at:
            self._pending[fix.unit_id] = fix
        # This process ranks from the fix at once; the others once the flush announces it.
        self._fleet.move(fix.unit_id, fix.point, fix.at)

    def listen(self) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=100)
        self._listeners.add(queue)
        return queue

    def unlisten(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self._listeners.discard(queue)

    async def _run(self) -> None:
        await outages.every(self._settings.position_flush_s, self.flush, outages.OutageLog(log, "position flush", self._metrics))

    async def flush(self) -> None:
        if not self._pending:
            return
        fixes, self._pending = list(self._pending.values()), {}
        try:
            await self._write(fixes)
        except BaseException:
            for fix in fixes:  # keep them for the next flush unless newer ones came in
                self.submit(fix)
            raise

    async def _write(self, fixes: list[Fix]) -> None:
        sample_every = dt.timedelta(seconds=self._settings.track_sample_s)
        sampled = [f for f in fixes if f.at - self._last_sampled.get(f.unit_id, dt.datetime.min.replace(tzinfo=dt.UTC)) >= sample_every]
        async with self._pool.acquire() as con, con.transaction():
            # Latest wins: a late-arriving older fix never overwrites a newer one.
            await con.execute(
                """UPDATE units u SET position_lat = f.lat, position_lon = f.lon, position_at = f.at
                   FROM unnest($1::text[], $2::float8[], $3::float8[], $4::timestamptz[]) AS f(id, lat, lon, at)
                   WHERE u.id = f.id AND (u.position_at IS NULL OR u.position_at < f.at)""",
                [f.unit_id for f in fixes], [f.point.lat for f in fixes], [f.point.lon for f in fixes], [f.at for f in fixes],
            )
            if sampled:
                await con.executemany(
                    """INSERT INTO unit_track (unit_id, at, lat, lon, accuracy) VALUES ($1, $2, $3, $4, $5)
                       ON CONFLICT DO NOTHING""",
                    [(f.unit_id, f.at, f.point.lat, f.point.lon, f.accuracy) for f in sampled],
                )
            for chunk in _chunks([[f.unit_id, f.point.lat, f.point.lon, f.at.timestamp()] for f in fixes]):
                await con.execute("SELECT pg_notify($1, $2)", CHANNEL, chunk)
        for f in sampled:
            self._last_sampled[f.unit_id] = f.at

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
        message = {"type": "positions", "units": units}
        for queue in list(self._listeners):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(message)


def _chunks(rows: list[list[Any]]) -> list[str]:
    chunks: list[str] = []
    current: list[list[Any]] = []
    size = 2
    for row in rows:
        text = json.dumps(row)
        if current and size + len(text) + 1 > NOTIFY_MAX_BYTES:
            chunks.append(json.dumps(current))
            current, size = [], 2
        current.append(row)
        size += len(text) + 1
    if current:
        chunks.append(json.dumps(current))
    return chunks
