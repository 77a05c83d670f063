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
kind the query allows). The search stops once the bound for every
unexplored ring exceeds the k-th best ETA found (strictly, so equal ETAs
still compete on unit id), and computes the exact geopy geodesic only for
candidates whose chord bound could still beat the k-th best.

Only available units are in the grid. A unit with a live fix sits in two
cubes, its fix's and its base's, because which one it is ranked from
depends on the query time (a fix goes stale after ``max_fix_age``); a
query counts it only in the cube of the point it is ranked from. Within a
cube, units are grouped by kind and capabilities, so a query asking for a
rare capability skips the others a group at a time, not a unit at a time.

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
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from dispatch._checks import check_aware, check_duration, check_positive
from dispatch.doctrine import Needs
from dispatch.errors import InvalidInput, UnknownUnit
from dispatch.eta import DistanceEtaModel, GeodesicEta
from dispatch.geo import Point, ecef_m, geodesic_m
from dispatch.ids import UnitId
from dispatch.recommend import Recommendation, Tiers, UnitFilter, check_query, rank_unit, tier_filters
from dispatch.staleness import DEFAULT_MAX_FIX_AGE, is_stale
from dispatch.status import UnitStatus
from dispatch.units import Unit, UnitKind

__all__ = ["DEFAULT_CELL_SIZE_M", "UnitIndex"]

DEFAULT_CELL_SIZE_M = 1000.0

# Absolute slack (metres) for floating-point error in the chord and cube
# arithmetic (~1e-8 m at Earth scale); generous, and harmless to pruning.
_SLACK_M = 0.001
_REL_SLACK = 1e-9

_Cell = tuple[int, int, int]
_Xyz = tuple[float, float, float]
_Group = tuple[UnitKind, frozenset[str]]  # units a filter admits or refuses together


@dataclass(slots=True)
class _Entry:
    """Internal, mutable: a unit and its precomputed grid placement."""

    unit: Unit
    base_xyz: _Xyz
    base_cell: _Cell
    fix_xyz: _Xyz | None
    fix_cell: _Cell | None


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
        self._cells: dict[_Cell, dict[_Group, dict[UnitId, _Entry]]] = {}

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
        """The first responders and the carriers for a call (see ``dispatch.doctrine``)."""
        care, carry = tier_filters(needs, exclude)
        first = self.recommend(point, k, now, care.required_capabilities, exclude=care.exclude)
        return Tiers(first, self.recommend(point, k, now, carry.required_capabilities, exclude=carry.exclude) if carry else [])

    def recommend(
        self,
        point: Point,
        k: int,
        now: datetime,
        required_capabilities: frozenset[str] = frozenset(),
        kinds: frozenset[UnitKind] | None = None,
        exclude: frozenset[UnitId] = frozenset(),
    ) -> list[Recommendation]:
        """The top ``k`` available units with ``required_capabilities`` by ETA to ``point``.

        Sorted by (ETA, unit id). Stale units are ranked from their base
        and flagged. Fewer than ``k`` come back when fewer qualify.
        """
        check_query(point, k, now)
        wanted = UnitFilter(required_capabilities, kinds, exclude)
        allowed_kinds = tuple(UnitKind) if kinds is None else tuple(kinds)
        if not allowed_kinds or not self._cells:
            return []
        eta = self._eta
        size = self._cell
        q = ecef_m(point)
        home = self._cell_of(q)
        # The patient's distance to the nearest face of its own cube.
        face = min(
            min(q[axis] - home[axis] * size, (home[axis] + 1) * size - q[axis]) for axis in range(3)
        )
        face = max(0.0, face)

        best: list[tuple[float, str, Recommendation]] = []
        pending: list[tuple[float, str, Unit]] = []
        admitted: dict[_Group, bool] = {}
        max_age = self._max_fix_age
        cells_by_key = self._cells
        qx, qy, qz = q

        def drain(limit: float) -> None:
            # Evaluate candidates in order of their ETA lower bound, up to ``limit``.
            while pending and pending[0][0] <= limit:
                if len(best) == k and pending[0][0] > best[-1][0]:
                    pending.clear()  # nothing left can beat the k-th best
                    return
                _, _, unit = heapq.heappop(pending)
                rec = rank_unit(unit, point, now, eta, max_age, geodesic_m)
                bisect.insort(best, (rec.eta_s, rec.unit_id, rec))
                if len(best) > k:
                    best.pop()

        def floor_eta_of(metres: float) -> float:
            # The least ETA any allowed kind could have from this far in a straight line.
            reach = _floor_m(metres)
            return min(eta.eta_for_distance(reach, kind) for kind in allowed_kinds)

        for cells, next_ring in self._rings(home):
            # Nearest cubes first: once one cannot beat the k-th best, neither can the rest of the ring.
            for cube_floor, cell in sorted((self._cube_distance(q, cell), cell) for cell in cells):
                cube_bound = floor_eta_of(cube_floor)
                drain(cube_bound)
                if len(best) == k and cube_bound > best[-1][0]:
                    break
                for group, members in cells_by_key[cell].items():
                    admits = admitted.get(group)
                    if admits is None:
                        admits = admitted[group] = wanted.admits(*group)
                    if not admits:
                        continue
                    kind = group[0]
                    # Candidates that cannot beat (or tie) the k-th best found so far are not queued.
                    worst = best[-1][0] if len(best) == k else math.inf
                    for uid, entry in members.items():
                        if uid in exclude:
                            continue
                        if entry.fix_xyz is not None and not is_stale(entry.unit.position_time, now, max_age):
                            (x, y, z), where = entry.fix_xyz, entry.fix_cell
                        else:
                            (x, y, z), where = entry.base_xyz, entry.base_cell
                        if where != cell:
                            continue  # counted in the cube of the point it is ranked from
                        chord = math.sqrt((x - qx) ** 2 + (y - qy) ** 2 + (z - qz) ** 2)
                        floor_eta = eta.eta_for_distance(_floor_m(chord), kind)
                        if floor_eta <= worst:
                            heapq.heappush(pending, (floor_eta, uid, entry.unit))
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

    def _cube_distance(self, xyz: _Xyz, cell: _Cell) -> float:
        """The straight-line distance from ``xyz`` to the nearest point of ``cell``'s cube: no unit in it is nearer."""
        size = self._cell
        total = 0.0
        for axis in range(3):
            low = cell[axis] * size
            gap = max(0.0, low - xyz[axis], xyz[axis] - (low + size))
            total += gap * gap
        return math.sqrt(total)

    def _register(self, entry: _Entry) -> None:
        # Only available units can be recommended: keep the grid small.
        if entry.unit.status is not UnitStatus.AVAILABLE:
            return
        unit = entry.unit
        group = (unit.kind, unit.capabilities)
        for cell in {entry.base_cell, entry.fix_cell}:
            if cell is not None:
                self._cells.setdefault(cell, {}).setdefault(group, {})[unit.id] = entry

    def _unregister(self, unit_id: UnitId) -> None:
        entry = self._entries.get(unit_id)
        if entry is None:
            return
        group = (entry.unit.kind, entry.unit.capabilities)
        for cell in {entry.base_cell, entry.fix_cell}:
            if cell is None:
                continue
            groups = self._cells.get(cell)
            members = groups.get(group) if groups is not None else None
            if groups is not None and members is not None:
                members.pop(unit_id, None)
                if not members:
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
