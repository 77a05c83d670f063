"""The live nearest-unit index: top-K available units by ETA, fast over thousands.

Units are bucketed in a uniform grid of cubes in Earth-centred (ECEF)
coordinates, and a query searches the cubes ring by ring outward from the
patient, each ring's nearest cube first. Why ECEF rather than a latitude/longitude grid: the straight-line
chord between two surface points never exceeds their geodesic distance, so

* a unit in ring ``r >= 1`` is at least ``(r - 1) * cell + m`` metres away
  (``m`` is the patient's distance to the faces of its own cube), and
* each candidate's own chord is a lower bound on its geodesic distance,

both exact and valid everywhere: at the poles, across the antimeridian,
for units on another continent. ``DistanceEtaModel.eta_for_distance`` is
non-decreasing, so a distance bound is an ETA bound (taken for the fastest
kind among the groups of units the query admits). The search stops once the bound for every
unexplored ring exceeds the k-th best ETA found (strictly, so equal ETAs
still compete on unit id), and computes the exact geopy geodesic only for
candidates whose chord bound could still beat the k-th best.

Only available units are in the grid. A unit with a live fix has two
places, its fix in that fix's cube and its base in the base's, because which one it is ranked from
depends on the query time (a fix goes stale after ``max_fix_age``). Within
a cube, places are grouped by kind and capabilities, so a query asking for a
rare capability skips the others a group at a time, not a unit at a time;
and a group keeps its fixes and its bases each sorted by the fix's time
(in integer microseconds), so a query takes the fresh fixes and the bases
of stale or missing ones as two slices, cut by bisection at
``now - max_fix_age``, with no test or datetime arithmetic per unit.

Candidates wait in one heap per unit kind keyed by their chord: within a
kind a nearer unit never has a later ETA, so only the nearest of each kind
needs its ETA bound computed to know which to evaluate next.

The exact distance is ``geodesic_m``: geopy's geodesic to the bit, on a
solver built once. Pruning leaves about ``k`` of them per query.

This is a cache of PostgreSQL state: it mirrors statuses and fixes it is
given and does not check transitions (the server did, before committing).
"""

from __future__ import annotations

import bisect
import functools
import heapq
import math
import operator
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from dispatch._checks import check_aware, check_duration, check_positive
from dispatch.doctrine import Needs
from dispatch.errors import InvalidInput, UnknownUnit
from dispatch.eta import DistanceEtaModel, GeodesicEta
from dispatch.geo import Point, ecef_m, geodesic_m
from dispatch.ids import UnitId
from dispatch.recommend import Recommendation, Tiers, UnitFilter, check_query, rank_unit, tier_filters
from dispatch.staleness import DEFAULT_MAX_FIX_AGE
from dispatch.status import UnitStatus
from dispatch.units import Unit, UnitKind

__all__ = ["DEFAULT_CELL_SIZE_M", "UnitIndex"]

DEFAULT_CELL_SIZE_M = 1000.0

# Absolute slack (metres) for floating-point error in the chord and cube
# arithmetic (~1e-8 m at Earth scale); generous, and harmless to pruning.
_SLACK_M = 0.001
_REL_SLACK = 1e-9

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
# The fix time a unit with no fix is filed under: before any cutoff (Python compares int and float exactly),
# so its base always counts.
_NEVER = -math.inf

_T = TypeVar("_T")
_first = operator.itemgetter(0)

_Cell = tuple[int, int, int]
_Xyz = tuple[float, float, float]
_Group = tuple[UnitKind, frozenset[str]]  # units a filter admits or refuses together
# A point a unit may be ranked from, filed under its fix's time: (fix time in microseconds, xyz, id, unit).
_Place = tuple[float, _Xyz, UnitId, Unit]
# A group's places in one cube: its units' fixes and its units' bases, each sorted (by fix time first).
_Bucket = tuple[list[_Place], list[_Place]]


def _micros(at: datetime) -> int:
    """An aware time as whole microseconds since 1970: exact, as datetime arithmetic is."""
    return (at - _EPOCH) // _MICROSECOND


@dataclass(slots=True)
class _Entry:
    """Internal, mutable: a unit and its precomputed grid placement."""

    unit: Unit
    base_xyz: _Xyz
    base_cell: _Cell
    fix_xyz: _Xyz | None
    fix_cell: _Cell | None
    fix_us: int | None  # the fix's time, in microseconds since 1970

    def places(self) -> list[tuple[_Cell, int, _Place]]:
        """Where the unit may be ranked from: each place's cube, which list of a bucket it goes in
        (0 fixes, 1 bases), and the place."""
        unit = self.unit
        if self.fix_xyz is None or self.fix_cell is None or self.fix_us is None:
            return [(self.base_cell, 1, (_NEVER, self.base_xyz, unit.id, unit))]
        return [
            (self.fix_cell, 0, (self.fix_us, self.fix_xyz, unit.id, unit)),
            (self.base_cell, 1, (self.fix_us, self.base_xyz, unit.id, unit)),
        ]


def _floor_m(straight_m: float) -> float:
    """A lower bound on the geodesic distance (metres) from a straight-line one, floating-point slack taken off."""
    return max(0.0, straight_m * (1.0 - _REL_SLACK) - _SLACK_M)


@functools.cache
def _shell_offsets(r: int) -> tuple[_Cell, ...]:
    """The offsets of the cubes at Chebyshev distance exactly ``r``; each ring is walked by many queries."""
    if r == 0:
        return ((0, 0, 0),)
    offsets: list[_Cell] = []
    for dx in range(-r, r + 1):
        edge_x = dx in (-r, r)
        for dy in range(-r, r + 1):
            if edge_x or dy in (-r, r):
                offsets.extend((dx, dy, dz) for dz in range(-r, r + 1))
            else:
                offsets.append((dx, dy, -r))
                offsets.append((dx, dy, r))
    return tuple(offsets)


def _nearest_first(xyz: _Xyz, cells: list[tuple[_Cell, _T]], size: float) -> list[tuple[float, _Cell, _T]]:
    """``cells`` (with what goes with each) nearest first, each with the straight-line distance from ``xyz``
    to the nearest point of its cube: no unit in the cube is nearer."""
    x, y, z = xyz
    floors = []
    for cell, item in cells:
        cx, cy, cz = cell[0] * size, cell[1] * size, cell[2] * size
        # Per axis, how far outside the cube's span [c, c + size] the point lies (0 when within).
        gx = max(0.0, cx - x, x - cx - size)
        gy = max(0.0, cy - y, y - cy - size)
        gz = max(0.0, cz - z, z - cz - size)
        floors.append((math.sqrt(gx * gx + gy * gy + gz * gz), cell, item))
    floors.sort(key=_first)
    return floors


class UnitIndex:
    """Nearest available units by ETA; results equal ``brute_force_recommend``."""

    def __init__(
        self,
        eta: DistanceEtaModel | None = None,
        *,
        max_fix_age: timedelta = DEFAULT_MAX_FIX_AGE,
        cell_size_m: float = DEFAULT_CELL_SIZE_M,
    ) -> None:
        self._eta: DistanceEtaModel = eta if eta is not None else GeodesicEta()
        self._max_fix_age = check_duration(max_fix_age, "max_fix_age")
        self._cell = check_positive(cell_size_m, "cell_size_m")
        self._entries: dict[UnitId, _Entry] = {}
        # Each group a number, cheaper to hash than (kind, capabilities) in the cubes a query searches.
        self._groups: dict[_Group, int] = {}
        self._cells: dict[_Cell, dict[int, _Bucket]] = {}

    @property
    def eta(self) -> DistanceEtaModel:
        return self._eta

    @property
    def max_fix_age(self) -> timedelta:
        return self._max_fix_age

    # -- maintenance ---------------------------------------------------------

    def upsert(self, unit: Unit) -> None:
        """Add a unit or replace everything known about it."""
        if not isinstance(unit, Unit):
            raise InvalidInput("unit", "must be a Unit")
        self._unregister(unit.id)
        base_xyz = ecef_m(unit.base)
        fix_xyz = ecef_m(unit.position) if unit.position is not None else None
        entry = _Entry(
            unit=unit,
            base_xyz=base_xyz,
            base_cell=self._cell_of(base_xyz),
            fix_xyz=fix_xyz,
            fix_cell=self._cell_of(fix_xyz) if fix_xyz is not None else None,
            fix_us=_micros(unit.position_time) if unit.position_time is not None else None,
        )
        self._entries[unit.id] = entry
        self._register(entry)

    def refresh(self, unit: Unit) -> None:
        """Take a unit's newer record (status, crew, ...) but keep a fix newer than the one it carries.

        A record read from the table can be older than a fix that reached the index since.
        """
        if not isinstance(unit, Unit):
            raise InvalidInput("unit", "must be a Unit")
        known = self._entries.get(unit.id)
        kept = known.unit if known is not None else None
        if (kept is not None and kept.position is not None and kept.position_time is not None
                and (unit.position_time is None or unit.position_time < kept.position_time)):
            unit = unit.moved(kept.position, kept.position_time)
        self.upsert(unit)

    def move(self, unit_id: UnitId, point: Point, at: datetime) -> bool:
        """Record a GPS fix; returns False (and keeps the newer fix) if ``at`` is older.

        Fixes can arrive out of order over a mobile network; the newest wins.
        """
        entry = self._entry(unit_id)
        if not isinstance(point, Point):
            raise InvalidInput("point", "must be a Point")
        check_aware(at, "at")
        current = entry.unit.position_time
        if current is not None and at < current:
            return False
        self.upsert(entry.unit.moved(point, at))
        return True

    def set_status(self, unit_id: UnitId, status: UnitStatus) -> Unit:
        """Mirror a committed status change; returns the updated unit."""
        entry = self._entry(unit_id)
        if not isinstance(status, UnitStatus):
            raise InvalidInput("status", "must be a UnitStatus")
        self._unregister(unit_id)
        entry.unit = entry.unit.with_status(status)
        self._register(entry)
        return entry.unit

    def remove(self, unit_id: UnitId) -> bool:
        """Forget a unit; False if it was not there (removal is idempotent)."""
        if unit_id not in self._entries:
            return False
        self._unregister(unit_id)
        del self._entries[unit_id]
        return True

    def get(self, unit_id: UnitId) -> Unit:
        return self._entry(unit_id).unit

    def units(self) -> list[Unit]:
        return [entry.unit for entry in self._entries.values()]

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, unit_id: object) -> bool:
        return unit_id in self._entries

    # -- query ---------------------------------------------------------------

    def recommend_tiers(
        self, point: Point, k: int, now: datetime, needs: Needs, exclude: frozenset[UnitId] = frozenset()
    ) -> Tiers:
        """The first responders and the carriers for a call (see ``dispatch.doctrine``). An ambulance is often in
        both tiers: its distance is measured once."""
        care, carry = tier_filters(needs, exclude)
        measure = functools.cache(geodesic_m)
        first = self.recommend(point, k, now, care.required_capabilities, exclude=care.exclude, measure=measure)
        return Tiers(first, self.recommend(point, k, now, carry.required_capabilities, exclude=carry.exclude, measure=measure)
                     if carry else [])

    def recommend(
        self,
        point: Point,
        k: int,
        now: datetime,
        required_capabilities: frozenset[str] = frozenset(),
        kinds: frozenset[UnitKind] | None = None,
        exclude: frozenset[UnitId] = frozenset(),
        measure: Callable[[Point, Point], float] | None = None,
    ) -> list[Recommendation]:
        """The top ``k`` available units with ``required_capabilities`` by ETA to ``point``.

        Sorted by (ETA, unit id). Stale units are ranked from their base
        and flagged. Fewer than ``k`` come back when fewer qualify. ``measure`` is `geodesic_m` (the default), or
        the same remembered across queries from one point.
        """
        check_query(point, k, now)
        wanted = UnitFilter(required_capabilities, kinds, exclude)
        # The groups the query admits, by number. Only their kinds bound the ETA of a unit not yet seen: a
        # faster kind that no admitted group has (motorbikes, for a capability only ambulances carry) would
        # only loosen every bound and search farther.
        admitted = [(number, group[0]) for group, number in self._groups.items() if wanted.admits(*group)]
        allowed_kinds = tuple(dict.fromkeys(kind for _, kind in admitted))
        if not allowed_kinds:
            return []
        eta = self._eta
        measure = measure or geodesic_m  # looked up now: tests count its calls
        eta_for = eta.eta_for_distance
        size = self._cell
        q = ecef_m(point)
        home = self._cell_of(q)
        # The patient's distance to the nearest face of its own cube.
        face = min(
            min(q[axis] - home[axis] * size, (home[axis] + 1) * size - q[axis]) for axis in range(3)
        )
        face = max(0.0, face)
        # A fix taken at t is fresh while ``now - t <= max_fix_age`` (``is_stale``, in exact integers): it counts
        # when taken at or after this microsecond, and its unit's base counts when it was taken before.
        cutoff = (_micros(now) - self._max_fix_age // _MICROSECOND,)

        best: list[tuple[float, str, Recommendation]] = []
        # Candidates by kind, nearest first: within a kind a nearer unit never has a later ETA, so each
        # kind's nearest holds its least ETA bound, and a bound is computed for it alone, not for every unit.
        heaps: list[tuple[UnitKind, list[tuple[float, _Place]]]] = [(kind, []) for kind in allowed_kinds]
        heap_of = dict(heaps)
        heap_for = {number: heap_of[kind] for number, kind in admitted}
        max_age = self._max_fix_age
        cells_by_key = self._cells
        dist = math.dist
        bisect_left = bisect.bisect_left
        waiting = 0  # candidates in the heaps
        grown = False  # candidates were added to the heaps' lists since they were last heaps

        def drain(limit: float) -> None:
            # Evaluate candidates in order of their ETA lower bound, up to ``limit``.
            nonlocal grown, waiting
            if grown:
                for _, heap in heaps:
                    heapq.heapify(heap)
                grown = False
            while waiting:
                low, nearest = math.inf, None
                for kind, heap in heaps:
                    if heap:
                        floor_eta = eta_for(_floor_m(heap[0][0]), kind)
                        if nearest is None or floor_eta < low:
                            low, nearest = floor_eta, heap
                if nearest is None or low > limit:
                    return
                if len(best) == k and low > best[-1][0]:
                    for _, heap in heaps:
                        heap.clear()  # nothing left can beat the k-th best
                    waiting = 0
                    return
                _, (_, _, uid, unit) = heapq.heappop(nearest)
                waiting -= 1
                if uid in exclude:
                    continue
                rec = rank_unit(unit, point, now, eta, max_age, measure)
                bisect.insort(best, (rec.eta_s, rec.unit_id, rec))
                if len(best) > k:
                    best.pop()

        def floor_eta_of(metres: float) -> float:
            # The least ETA any allowed kind could have from this far in a straight line.
            reach = _floor_m(metres)
            return min(eta_for(reach, kind) for kind in allowed_kinds)

        for cells, next_ring in self._rings(home):
            # The ring's cubes that hold a group the query admits (for a rare capability, few), each with
            # those groups' buckets and heaps.
            searched: list[tuple[_Cell, list[tuple[_Bucket, list[tuple[float, _Place]]]]]] = []
            for cell in cells:
                buckets = [(bucket, heap_for[number]) for number, bucket in cells_by_key[cell].items()
                           if number in heap_for]
                if buckets:
                    searched.append((cell, buckets))
            # Nearest cubes first: once one cannot beat the k-th best, neither can the rest of the ring.
            for cube_floor, _, buckets in _nearest_first(q, searched, size):
                # Until the heaps could fill the k best, evaluating waits: nothing could be pruned yet, and what
                # is evaluated later still goes in order of bound.
                if waiting + len(best) >= k:
                    cube_bound = floor_eta_of(cube_floor)
                    drain(cube_bound)
                    if len(best) == k and cube_bound > best[-1][0]:
                        break
                for (fixes, bases), heap in buckets:
                    # Excluded units are dropped when they come out of a heap, which is rarely: few do.
                    found = [
                        (dist(place[1], q), place)
                        for places in (fixes[bisect_left(fixes, cutoff):], bases[: bisect_left(bases, cutoff)])
                        for place in places
                    ]
                    if found:
                        heap.extend(found)
                        waiting += len(found)
                        grown = True
            if next_ring is None:
                break  # every occupied cube has been searched
            # Every unit not yet searched is at least this far (chord, hence geodesic).
            bound = floor_eta_of((next_ring - 1) * size + face)
            drain(bound)
            if len(best) == k and bound > best[-1][0]:
                break
        drain(math.inf)
        return [rec for _, _, rec in best]

    # -- internals -----------------------------------------------------------

    def _entry(self, unit_id: UnitId) -> _Entry:
        try:
            return self._entries[unit_id]
        except KeyError:
            raise UnknownUnit(unit_id) from None

    def _cell_of(self, xyz: _Xyz) -> _Cell:
        size = self._cell
        return (math.floor(xyz[0] / size), math.floor(xyz[1] / size), math.floor(xyz[2] / size))

    def _register(self, entry: _Entry) -> None:
        # Only available units can be recommended: keep the grid small.
        if entry.unit.status is not UnitStatus.AVAILABLE:
            return
        group = self._groups.setdefault((entry.unit.kind, entry.unit.capabilities), len(self._groups))
        for cell, which, place in entry.places():
            bisect.insort(self._cells.setdefault(cell, {}).setdefault(group, ([], []))[which], place)

    def _unregister(self, unit_id: UnitId) -> None:
        entry = self._entries.get(unit_id)
        if entry is None:
            return
        group = self._groups.get((entry.unit.kind, entry.unit.capabilities))
        for cell, which, place in entry.places():
            groups = self._cells.get(cell)
            bucket = groups.get(group) if groups is not None and group is not None else None
            if groups is None or group is None or bucket is None:
                continue  # not registered: the unit was not available
            places = bucket[which]
            # (time, xyz, id) sorts just before the place itself, and no other place has the same id.
            at = bisect.bisect_left(places, place[:3])
            if at < len(places) and places[at][2] == unit_id:
                del places[at]
            if not bucket[0] and not bucket[1]:
                del groups[group]
                if not groups:
                    del self._cells[cell]

    def _rings(self, home: _Cell) -> Iterator[tuple[list[_Cell], int | None]]:
        """Occupied cubes ring by ring outward from ``home``.

        Yields each ring's occupied cubes with the smallest ring that may
        still hold unsearched ones (None when none is left). Walking a shell
        costs ~24 r^2 lookups; once that exceeds the number of occupied
        cubes (a patient far from every unit), the remaining occupied cubes
        are bucketed by ring instead.
        """
        occupied = self._cells
        total = len(occupied)
        seen = 0
        ring = 0
        while 24 * ring * ring + 2 <= total or ring == 0:
            hx, hy, hz = home
            found = [
                cell for dx, dy, dz in _shell_offsets(ring) if (cell := (hx + dx, hy + dy, hz + dz)) in occupied
            ]
            seen += len(found)
            if seen == total:
                yield found, None
                return
            yield found, ring + 1
            ring += 1
        by_ring: dict[int, list[_Cell]] = {}
        for cell in occupied:
            distance = max(abs(cell[0] - home[0]), abs(cell[1] - home[1]), abs(cell[2] - home[2]))
            if distance >= ring:
                by_ring.setdefault(distance, []).append(cell)
        order = sorted(by_ring)
        for position, distance in enumerate(order):
            following = order[position + 1] if position + 1 < len(order) else None
            yield by_ring[distance], following
