"""Which point a unit is ranked from: its live fix, or its base if the fix is stale.

A phone that stopped reporting (flat battery, no signal, app closed) leaves
an old fix behind; ranking from it would send a unit that may be anywhere.
After ``max_age`` without a fix the unit is ranked from its base instead,
and flagged so the operator confirms its position by radio.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from dispatch.geo import Point
from dispatch.units import Unit

__all__ = ["DEFAULT_MAX_FIX_AGE", "RankingPoint", "is_stale", "ranking_point"]

DEFAULT_MAX_FIX_AGE = timedelta(minutes=30)


@dataclass(frozen=True, slots=True)
class RankingPoint:
    point: Point
    stale: bool  # it sent a fix, but too long ago
    no_fix: bool = False  # it never sent one (a new phone, or one never switched on)


def is_stale(position_time: datetime | None, now: datetime, max_age: timedelta) -> bool:
    """True when there is no fix or it is older than ``max_age`` at ``now``.

    A fix exactly ``max_age`` old is still fresh. A fix stamped in the future
    (a phone clock running ahead) counts as fresh: it is the newest we have.
    """
    return position_time is None or now - position_time > max_age


def ranking_point(unit: Unit, now: datetime, max_age: timedelta = DEFAULT_MAX_FIX_AGE) -> RankingPoint:
    if unit.position is None:
        return RankingPoint(unit.base, stale=False, no_fix=True)
    if is_stale(unit.position_time, now, max_age):
        return RankingPoint(unit.base, stale=True)
    return RankingPoint(unit.position, stale=False)
