"""The live fleet: an in-memory nearest-unit index, a cache of the units table.

Built from PostgreSQL at start-up, kept current from unit events (each carries
the unit's snapshot) and from GPS fixes that other processes announce on the
positions channel, and rebuilt from the table every ``RESYNC_S`` as a safety
net. Decisions that must be exact (assigning a unit) are made by the database;
the index only proposes.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import heapq
import itertools
import logging
from collections.abc import Iterable, Mapping
from typing import Any

import asyncpg

from dispatch.doctrine import Needs
from dispatch.eta import GeodesicEta, ReRanker
from dispatch.geo import Point
from dispatch.ids import UnitId
from dispatch.index import UnitIndex
from dispatch.recommend import Recommendation, Tiers
from dispatch.status import Actor, ReleaseReason, UnitStatus, next_statuses, required_reasons
from dispatch.units import Unit, UnitKind
from server import events
from server.bus import EventBus
from server.config import DispatchSettings
from server.events import Event
from server.tasks import cancel_and_wait

log = logging.getLogger(__name__)

RESYNC_S = 30.0
UNIT_COLUMNS = """id, callsign, kind, capabilities, base_facility, base_lat, base_lon, kelurahan, crew, status,
                  status_since, position_lat, position_lon, position_at"""


def eta_model(settings: DispatchSettings) -> GeodesicEta:
    return GeodesicEta(
        detour_factor=settings.detour_factor,
        speed_kmh_by_kind={UnitKind.AMBULANCE: settings.speed_ambulance_kmh, UnitKind.MOTORBIKE: settings.speed_motorbike_kmh},
    )


def unit_from_row(row: asyncpg.Record | dict[str, Any]) -> Unit:
    has_fix = row["position_at"] is not None
    return Unit(
        id=UnitId(row["id"]),
        callsign=row["callsign"],
        kind=UnitKind(row["kind"]),
        capabilities=frozenset(row["capabilities"]),
        base=Point(row["base_lat"], row["base_lon"]),
        status=UnitStatus(row["status"]),
        position=Point(row["position_lat"], row["position_lon"]) if has_fix else None,
        position_time=_aware(row["position_at"]) if has_fix else None,
    )


def _aware(value: dt.datetime | str) -> dt.datetime:
    return dt.datetime.fromisoformat(value) if isinstance(value, str) else value


def unit_snapshot(row: Mapping[str, Any]) -> dict[str, Any]:
    """A unit as JSON, as it travels in events and API responses."""
    return {
        "id": row["id"],
        "callsign": row["callsign"],
        "kind": row["kind"],
        "capabilities": list(row["capabilities"]),
        "base_facility": row["base_facility"],
        "base_lat": row["base_lat"],
        "base_lon": row["base_lon"],
        "kelurahan": row["kelurahan"],
        "crew": row["crew"],
        "status": row["status"],
        "status_since": row["status_since"].isoformat(),
        "position_lat": row["position_lat"],
        "position_lon": row["position_lon"],
        "position_at": row["position_at"].isoformat() if row["position_at"] else None,
        # Never sent a fix (ranked from its base); a fix that is only old is the board's "stale".
        "no_fix": row["position_at"] is None,
        "crew_moves": crew_moves(UnitStatus(row["status"])),
        # Whether an operator may withdraw the unit from its incident now (the console's button).
        "withdrawable": ReleaseReason.CANCELLED in required_reasons(UnitStatus(row["status"]), UnitStatus.AVAILABLE),
    }


def crew_moves(status: UnitStatus) -> list[dict[str, Any]]:
    """The statuses the crew may report next, each with the reasons it needs (none: no reason)."""
    return [
        {"status": target.value, "reasons": sorted(r.value for r in required_reasons(status, target))}
        for target in next_statuses(status, Actor.CREW)
    ]


class Fleet:
    def __init__(self, pool: asyncpg.Pool, bus: EventBus, settings: DispatchSettings, road: ReRanker | None = None) -> None:
        self._pool = pool
        self._bus = bus
        self.settings = settings
        self.road = road  # re-ranks the straight-line shortlist by road time (server.road_eta), when configured
        self.index = UnitIndex(eta_model(settings), max_fix_age=dt.timedelta(seconds=settings.stale_position_s))
        self._task: asyncio.Task[None] | None = None
        # Events up to _floor are already in the index (read with the table); applied_id is the newest applied.
        self._floor = 0
        self.applied_id = 0
        # Callers waiting for the index to reach an event: (its id, a tie-breaker, woken), the lowest id first. Each
        # is woken once, when its own event is applied; not by every event before it.
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._waiters = itertools.count()
        # GPS fixes not in the index yet, the newest per unit: a fix costs a dict entry, and the index takes
        # each unit's newest once, before it ranks (a flood of fixes costs the index nothing more).
        self._moves: dict[UnitId, tuple[Point, dt.datetime]] = {}

    @property
    def pool(self) -> asyncpg.Pool:
        return self._pool

    async def start(self) -> None:
        await self.resync()
        self._sub = self._bus.subscribe(None)
        self._task = asyncio.create_task(self._run(), name="fleet")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._bus.unsubscribe(self._sub)

    async def resync(self) -> None:
        self.settle()
        async with self._pool.acquire() as con:
            # Every event up to `last` is settled before the units are read, so the rows hold all of them:
            # none is re-applied after. (Later ones may be in the rows too: applied again, in order, harmlessly.)
            last = await events.last_id(con)
            rows = await con.fetch(f"SELECT {UNIT_COLUMNS} FROM units")
        index = UnitIndex(self.index.eta, max_fix_age=self.index.max_fix_age)
        for row in rows:
            index.upsert(unit_from_row(row))
        for unit in self.index.units():
            # A fix that reached this index after the snapshot (or is not flushed yet) is newer: it stays.
            if unit.position is not None and unit.position_time is not None and unit.id in index:
                index.move(unit.id, unit.position, unit.position_time)
        self.index = index
        self._floor = max(self._floor, last)
        self._advanced(last)

    def _advanced(self, event_id: int) -> None:
        self.applied_id = max(self.applied_id, event_id)
        while self._waiting and self._waiting[0][0] <= self.applied_id:
            woken = heapq.heappop(self._waiting)[2]
            if not woken.done():
                woken.set_result(None)

    async def caught_up(self, event_id: int, timeout: float = 1.0) -> bool:
        """Wait until every event up to ``event_id`` is in the index (read-your-writes for recommendations)."""
        if self.applied_id >= event_id:
            return True
        entry = (event_id, next(self._waiters), asyncio.get_running_loop().create_future())
        heapq.heappush(self._waiting, entry)
        try:
            async with asyncio.timeout(timeout):
                await entry[2]
        except TimeoutError:
            log.warning("fleet index is behind the event log (%d < %d)", self.applied_id, event_id)
            return False
        finally:
            if entry[2].cancelled() and entry in self._waiting:  # given up (timed out, or its request cancelled)
                self._waiting.remove(entry)
                heapq.heapify(self._waiting)
        return True

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_resync = loop.time() + RESYNC_S
        while True:
            try:
                async with asyncio.timeout(max(0.0, next_resync - loop.time())):
                    event = await self._sub.queue.get()
                self.apply_event(event)
                while not self._sub.queue.empty():  # the rest of the bus's batch, in one turn of the loop
                    event = self._sub.queue.get_nowait()
                    self.apply_event(event)
                self._advanced(event.id)
            except TimeoutError:
                with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                    await self.resync()
                next_resync = loop.time() + RESYNC_S
            if self._sub.overflowed.is_set():
                # Missed events: start over from the table.
                self._bus.unsubscribe(self._sub)
                self._sub = self._bus.subscribe(None)
                await self.resync()

    def apply_event(self, event: Event) -> None:
        snapshot = event.payload.get("unit")
        if event.id > self._floor and isinstance(snapshot, dict):
            # The snapshot's position was read with the row: a fix applied since is newer and stays.
            self.index.refresh(unit_from_row(snapshot))

    def move(self, unit_id: str, point: Point, at: dt.datetime) -> None:
        waiting = self._moves.get(UnitId(unit_id))
        if waiting is None or at >= waiting[1]:
            self._moves[UnitId(unit_id)] = (point, at)

    def settle(self) -> None:
        """Put the waiting fixes in the index (an older one than the index has is ignored there)."""
        moves, self._moves = self._moves, {}
        for unit_id, (point, at) in moves.items():
            if unit_id in self.index:
                self.index.move(unit_id, point, at)

    async def current(self) -> None:
        """Catch up with everything committed so far, from any process."""
        await self.caught_up(await self._pool.fetchval("SELECT coalesce(max(id), 0) FROM events"))

    def recommend(
        self, point: Point, k: int, capabilities: Iterable[str] = (), exclude: Iterable[str] = ()
    ) -> list[Recommendation]:
        self.settle()
        return self.index.recommend(
            point, k, dt.datetime.now(dt.UTC),
            required_capabilities=frozenset(capabilities), exclude=frozenset(UnitId(u) for u in exclude),
        )

    def recommend_tiers(self, point: Point, k: int, needs: Needs, exclude: Iterable[str] = ()) -> Tiers:
        self.settle()
        return self.index.recommend_tiers(point, k, dt.datetime.now(dt.UTC), needs, frozenset(UnitId(u) for u in exclude))
