"""The kelurahan and kecamatan of a call: the one named, else the one whose centroid is nearest to the location.

One row read, in a statement of the caller's (`SQL`, embedded with that statement's parameters), then checked here.
"""

from __future__ import annotations

import math

from dispatch.geo import Point, geodesic_m
from server.errors import InvalidField
from server.statements import Params

# Nearest kelurahan centroid farther than this is not taken as the call's kelurahan.
KELURAHAN_MATCH_M = 5000.0

# The named kelurahan (by code or name), or without a name the nearest centroid. Picking the nearest needs no
# geodesic: a flat projection (longitude scaled by the cosine of the latitude) orders them the same at this scale.
SQL = """SELECT code, kecamatan, lat, lon FROM kelurahan
    WHERE CASE WHEN {name}::text <> '' THEN code = {name} OR lower(name) = lower({name}) ELSE {lat}::float8 IS NOT NULL END
    ORDER BY (lat - {lat}::float8) ^ 2 + ((lon - {lon}::float8) * {scale}::float8) ^ 2 NULLS LAST LIMIT 1"""


def sql(params: Params, kelurahan: str, location: Point | None) -> str:
    """`SQL` for a call naming ``kelurahan`` (or none) at ``location``, its values added to ``params``."""
    name = params.add(kelurahan)
    if location is None:
        lat, lon, scale = params.add(None), params.add(None), params.add(None)
    else:
        lat, lon, scale = params.add(location.lat), params.add(location.lon), params.add(math.cos(math.radians(location.lat)))
    return SQL.format(name=name, lat=lat, lon=lon, scale=scale)


def area(kelurahan: str, location: Point | None, found: tuple[str, str, float, float] | None) -> tuple[str | None, str | None]:
    """(kelurahan code, kecamatan code) from the row `SQL` found (code, kecamatan, lat, lon), if any."""
    if kelurahan:
        if found is None:
            raise InvalidField(f"unknown kelurahan {kelurahan!r}", field="kelurahan")
        return found[0], found[1]
    if location is None or found is None or geodesic_m(location, Point(found[2], found[3])) > KELURAHAN_MATCH_M:
        return None, None
    return found[0], found[1]
