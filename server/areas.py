"""The kelurahan and kecamatan of a call: the one named, else the one whose centroid is nearest to the location.

One row read, in a statement of the caller's (`SQL`, embedded with that statement's parameters), then checked here.
"""

from __future__ import annotations

import math
from typing import Any

from dispatch.geo import Point, geodesic_m
from server.errors import InvalidField

# Nearest kelurahan centroid farther than this is not taken as the call's kelurahan.
KELURAHAN_MATCH_M = 5000.0

# The named kelurahan (by code or name), or without a name the nearest centroid. Picking the nearest needs no
# geodesic: a flat projection (longitude scaled by the cosine of the latitude) orders them the same at this scale.
SQL = """SELECT code, kecamatan, lat, lon FROM kelurahan
    WHERE CASE WHEN {name}::text <> '' THEN code = {name} OR lower(name) = lower({name}) ELSE {lat}::float8 IS NOT NULL END
    ORDER BY (lat - {lat}::float8) ^ 2 + ((lon - {lon}::float8) * {scale}::float8) ^ 2 NULLS LAST LIMIT 1"""


def sql(first: int) -> str:
    """`SQL` reading `values` from parameter ``$first`` on."""
    name, lat, lon, scale = (f"${n}" for n in range(first, first + 4))
    return SQL.format(name=name, lat=lat, lon=lon, scale=scale)


def values(kelurahan: str, location: Point | None) -> tuple[Any, ...]:
    if location is None:
        return kelurahan, None, None, None
    return kelurahan, location.lat, location.lon, math.cos(math.radians(location.lat))


def area(kelurahan: str, location: Point | None, found: tuple[str, str, float, float] | None) -> tuple[str | None, str | None]:
    """(kelurahan code, kecamatan code) from the row `SQL` found (code, kecamatan, lat, lon), if any."""
    if kelurahan:
        if found is None:
            raise InvalidField(f"unknown kelurahan {kelurahan!r}", field="kelurahan")
        return found[0], found[1]
    if location is None or found is None or geodesic_m(location, Point(found[2], found[3])) > KELURAHAN_MATCH_M:
        return None, None
    return found[0], found[1]
