"""Road-network ETAs from an OSRM server's Table service, to re-rank the straight-line shortlist.

With ``dispatch.road_eta_url`` set, a recommendation takes the ``road_eta_shortlist``
best units by straight-line ETA, asks OSRM in one request for the driving time from
each to the scene, and keeps the ``recommend_k`` best by road time
(`dispatch.recommend.rerank_by_road_eta`). OSRM routes cars: a motorbike team's time
is the car's scaled by the configured speeds, as in the straight-line model, since
a motorbike filters through the traffic that holds an ambulance up.

Nothing that goes wrong here hides a unit or holds up the operator for longer than
``road_eta_timeout_s``: on a timeout, an error or an answer that does not parse, the
straight-line order stands; a unit OSRM cannot route keeps its straight-line ETA.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import aiohttp

from dispatch.eta import Leg
from dispatch.geo import Point
from dispatch.ids import UnitId
from dispatch.recommend import Recommendation, rerank_by_road_eta
from dispatch.units import UnitKind
from server.config import DispatchSettings

log = logging.getLogger(__name__)


class OsrmEta:
    """A `dispatch.eta.ReRanker` backed by OSRM's ``/table/v1/{profile}/...`` service; it also gives the
    destination hospitals' road times from a scene, and a carrying unit's to its hospital."""

    def __init__(self, session: aiohttp.ClientSession, settings: DispatchSettings) -> None:
        self._session = session
        self._base = settings.road_eta_url.rstrip("/")
        self._profile = settings.road_eta_profile
        self._timeout = aiohttp.ClientTimeout(total=settings.road_eta_timeout_s)
        self.shortlist = settings.road_eta_shortlist
        # OSRM's car time x this = the time of a unit of that kind.
        self._scale = {
            UnitKind.AMBULANCE: 1.0,
            UnitKind.MOTORBIKE: settings.speed_ambulance_kmh / settings.speed_motorbike_kmh,
        }

    async def rerank(self, dest: Point, shortlist: Sequence[Recommendation], k: int) -> list[Recommendation]:
        return rerank_by_road_eta(shortlist, await self.road_eta_s(dest, shortlist), k)

    async def road_eta_s(self, dest: Point, shortlist: Sequence[Recommendation]) -> dict[UnitId, float]:
        """Road seconds to ``dest`` for the units OSRM could route; empty when it could not answer."""
        seconds = await self.legs_s([Leg(rec.ranked_from, rec.kind, dest) for rec in shortlist])
        return {rec.unit_id: s for rec, s in zip(shortlist, seconds, strict=True) if s is not None}

    async def legs_s(self, legs: Sequence[Leg]) -> list[float | None]:
        """The road seconds of each leg, all in one request: OSRM's car time scaled to the leg's unit kind; None where
        OSRM found no route or did not answer."""
        if not legs:
            return []
        sources = list(dict.fromkeys(leg.origin for leg in legs))
        ends = list(dict.fromkeys(leg.dest for leg in legs))
        rows = await self._table(sources, ends)
        if not rows:
            return [None] * len(legs)
        row_of, column_of = {p: i for i, p in enumerate(sources)}, {p: j for j, p in enumerate(ends)}
        seconds = [rows[row_of[leg.origin]][column_of[leg.dest]] for leg in legs]
        return [None if s is None else s * self._scale[leg.kind] for leg, s in zip(legs, seconds, strict=True)]

    async def _table(self, sources: Sequence[Point], destinations: Sequence[Point]) -> list[list[float | None]]:
        """OSRM's car durations, one row per source; empty when it could not answer."""
        coordinates = ";".join(f"{p.lon:.6f},{p.lat:.6f}" for p in [*sources, *destinations])
        params = {
            "sources": ";".join(str(i) for i in range(len(sources))),
            "destinations": ";".join(str(len(sources) + j) for j in range(len(destinations))),
            "annotations": "duration",
        }
        url = f"{self._base}/table/v1/{self._profile}/{coordinates}"
        try:
            async with self._session.get(url, params=params, timeout=self._timeout) as response:
                body = await response.json(content_type=None)
            return _durations(body, len(sources), len(destinations))
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            log.warning("road ETAs unavailable, keeping straight-line order: %s", exc or type(exc).__name__)
            return []


def _durations(body: object, sources: int, destinations: int) -> list[list[float | None]]:
    """The duration matrix of an OSRM table answer, a None where no route was found."""
    if not isinstance(body, dict) or body.get("code") != "Ok":
        code = body.get("code") if isinstance(body, dict) else None
        raise ValueError(f"OSRM answered {code or 'something else'!r}")
    rows = body.get("durations")
    if not isinstance(rows, list) or len(rows) != sources:
        raise ValueError("OSRM's duration matrix has the wrong shape")
    result: list[list[float | None]] = []
    for row in rows:
        if not (isinstance(row, list) and len(row) == destinations):
            raise ValueError("OSRM's duration matrix has the wrong shape")
        result.append([_duration(value) for value in row])
    return result


def _duration(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 86400:
        return float(value)
    raise ValueError(f"OSRM gave an impossible duration {value!r}")
