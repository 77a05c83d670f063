"""The region: kecamatan, kelurahan and facilities, for every signed-in user."""

from __future__ import annotations

from aiohttp import web

from server.api_schemas import OBJECT, array, obj
from server.keys import POOL
from server.roles import ALL_ROLES
from server.routing import Routes, json_response

routes = Routes("region")


@routes.route("GET", "/api/region", roles=ALL_ROLES, summary="Kecamatan, kelurahan and facilities of the region", returns={200: obj(region=OBJECT, kecamatan=array(), kelurahan=array(), facilities=array())})
async def region(request: web.Request) -> web.Response:
    async with request.app[POOL].acquire() as con:
        kecamatan = await con.fetch("SELECT code, name FROM kecamatan ORDER BY name")
        kelurahan = await con.fetch(
            "SELECT code, name, kecamatan, lat, lon, synthetic_location FROM kelurahan ORDER BY name"
        )
        facilities = await con.fetch(
            "SELECT code, kind, name, kecamatan, kelurahan, lat, lon, specialties, services, detail FROM facilities ORDER BY kind, name"
        )
        name = await con.fetchval("SELECT value FROM meta WHERE key = 'region'")
    return json_response({
        "region": name,
        "kecamatan": [dict(r) for r in kecamatan],
        "kelurahan": [dict(r) for r in kelurahan],
        "facilities": [dict(r) for r in facilities],
    })
