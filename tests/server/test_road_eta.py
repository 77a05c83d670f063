"""A configured road ETA provider (OSRM's Table service) re-ranks the straight-line shortlist; when it fails,
is slow or cannot route a unit, the straight-line answer stands and no unit is lost.

OSRM itself cannot run here (no road data), so a small loopback server answers its Table API as OSRM
documents it: the same URL shape, the same JSON."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from dispatch.units import UnitKind
from server.config import DispatchSettings
from tests.conftest import Api, app_config, start_api
from tests.server.dispatch_support import SCENE, call_body
from tests.server.notice_support import HOSPITAL, notices, served_incident
from tests.server.test_consults import close_api


class Osrm:
    """Answers ``/table/v1/{profile}/{coordinates}`` like OSRM: to one destination, ``durations[i] = (600 - 50 i)``
    seconds from source i, except the sources in ``unroutable``; from one source to several destinations, the time
    ``to_place`` gives for each; or fails the way it is told to."""

    def __init__(self) -> None:
        self.requests: list[web.Request] = []
        self.mode = "ok"
        self.unroutable = {2}

    async def table(self, request: web.Request) -> web.Response:
        self.requests.append(request)
        if self.mode == "error":
            return web.json_response({"code": "InvalidQuery", "message": "Query string malformed"}, status=400)
        if self.mode == "slow":
            await asyncio.sleep(5)
        sources = request.query["sources"].split(";")
        destinations = [int(d) for d in request.query["destinations"].split(";")]
        if len(destinations) > 1:
            points = [tuple(map(float, c.split(","))) for c in request.match_info["coordinates"].split(";")]
            return web.json_response({"code": "Ok", "durations": [[to_place(points[d][1]) for d in destinations]]})
        return web.json_response({
            "code": "Ok",
            "durations": [[None if int(i) in self.unroutable else 600.0 - 50 * int(i)] for i in sources],
        })


def to_place(lat: float) -> float:
    """Road seconds to a place, by its latitude alone: an order the straight line does not give."""
    return round((-6.0 - lat) * 36000, 1)


@pytest.fixture
async def osrm() -> AsyncIterator[tuple[Osrm, str]]:
    fake = Osrm()
    app = web.Application()
    app.router.add_get("/table/v1/{profile}/{coordinates}", fake.table)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    yield fake, f"http://127.0.0.1:{server.port}"
    await server.close()


@pytest.fixture
async def apis(demo_dsn: str, osrm: tuple[Osrm, str]) -> AsyncIterator[tuple[Api, Api]]:
    """One app ranking by straight line only, asked for ten units; one re-ranking its top ten by road time."""
    base = app_config(demo_dsn)
    plain = await start_api(demo_dsn, dataclasses.replace(base, dispatch=DispatchSettings(recommend_k=10)))
    road = await start_api(demo_dsn, dataclasses.replace(base, dispatch=DispatchSettings(
        recommend_k=5, road_eta_url=osrm[1] + "/", road_eta_shortlist=10, road_eta_timeout_s=0.5)))
    yield plain, road
    await close_api(road)
    await close_api(plain)


def scale(kind: str) -> float:
    settings = DispatchSettings()
    return 1.0 if kind == UnitKind.AMBULANCE.value else settings.speed_ambulance_kmh / settings.speed_motorbike_kmh


async def test_road_times_re_rank_the_shortlist(apis: tuple[Api, Api], osrm: tuple[Osrm, str]) -> None:
    plain, road = apis
    fake, _ = osrm
    operator = await road.login("operator")
    # A call that needs no transport: one tier, so the shortlist is the first responders' alone.
    status, created = await road.call("POST", "/api/calls", operator, json=call_body(call_type="general_sickness"))
    assert status == 201, created
    assert created["transport"] == []
    incident_id = created["incident"]["id"]
    _, straight = await plain.call("GET", f"/api/incidents/{incident_id}/recommendations", await plain.login("operator"))
    shortlist = straight["recommendations"]
    assert len(shortlist) == 10

    # One OSRM request, shaped as its Table API wants: the ten units as sources, the scene as destination.
    [request] = fake.requests
    coordinates = request.match_info["coordinates"].split(";")
    assert request.match_info["profile"] == "driving" and len(coordinates) == 11
    assert coordinates[-1] == f"{SCENE['lon']:.6f},{SCENE['lat']:.6f}"
    assert coordinates[:10] == [f"{r['ranked_from']['lon']:.6f},{r['ranked_from']['lat']:.6f}" for r in shortlist]
    assert (request.query["sources"], request.query["destinations"], request.query["annotations"]) == (
        ";".join(map(str, range(10))), "10", "duration")

    # The five best by road time (a motorbike's scaled as in the straight-line model); the unit OSRM
    # could not route competes with its straight-line ETA.
    def road_time(i: int, r: dict[str, Any]) -> float:
        return r["eta_s"] if i in fake.unroutable else (600.0 - 50 * i) * scale(r["kind"])

    expected = sorted(((road_time(i, r), r["unit_id"]) for i, r in enumerate(shortlist)))[:5]
    got = created["recommendations"]
    assert [r["unit_id"] for r in got] == [unit for _, unit in expected]
    for r in got:
        i = next(n for n, s in enumerate(shortlist) if s["unit_id"] == r["unit_id"])
        assert r["road_eta_s"] == (None if i in fake.unroutable else pytest.approx(road_time(i, r)))
        assert r["eta_s"] == pytest.approx(shortlist[i]["eta_s"])  # the straight-line estimate is kept beside it
    assert got[0]["unit_id"] != shortlist[0]["unit_id"]  # the road order differs from the straight line here


@pytest.mark.parametrize("mode", ["error", "slow"])
async def test_a_failing_or_slow_road_service_leaves_the_straight_line_order(apis: tuple[Api, Api], osrm: tuple[Osrm, str], mode: str) -> None:
    plain, road = apis
    fake, _ = osrm
    fake.mode = mode
    operator = await road.login("operator")
    status, created = await road.call("POST", "/api/calls", operator, json=call_body())
    assert status == 201, created
    assert len(fake.requests) == 1  # both tiers in one request
    assert created["transport"]
    _, straight = await plain.call("GET", f"/api/incidents/{created['incident']['id']}/recommendations", await plain.login("operator"))
    assert [r["unit_id"] for r in created["recommendations"]] == [r["unit_id"] for r in straight["recommendations"][:5]]
    assert all(r["road_eta_s"] is None for r in created["recommendations"])


async def test_both_tiers_are_re_ranked_from_one_request(apis: tuple[Api, Api], osrm: tuple[Osrm, str]) -> None:
    plain, road = apis
    fake, _ = osrm
    operator = await road.login("operator")
    status, created = await road.call("POST", "/api/calls", operator, json=call_body())  # chest pain: care and transport
    assert status == 201, created
    _, straight = await plain.call("GET", f"/api/incidents/{created['incident']['id']}/recommendations", await plain.login("operator"))
    [request] = fake.requests
    union = {r["unit_id"] for r in straight["recommendations"] + straight["transport"]}
    assert len(request.match_info["coordinates"].split(";")) == len(union) + 1  # a unit in both tiers is asked once
    for tier in ("recommendations", "transport"):
        assert len(created[tier]) == 5
        assert {r["unit_id"] for r in created[tier]} <= {r["unit_id"] for r in straight[tier]}
        times = [r["road_eta_s"] if r["road_eta_s"] is not None else r["eta_s"] for r in created[tier]]
        assert times == sorted(times)
    assert all("transport" in r["capabilities"] for r in created["transport"])


async def test_destination_hospitals_rank_by_road_time_and_by_straight_line_without_it(
    apis: tuple[Api, Api], osrm: tuple[Osrm, str],
) -> None:
    plain, road = apis
    _, created = await plain.call("POST", "/api/calls", await plain.login("operator"), json=call_body(call_type="child_fever"))
    path = f"/api/incidents/{created['incident']['id']}/hospitals"
    status, by_line = await plain.call("GET", path, await plain.login("operator"))
    assert status == 200 and not any(h["road_eta"] for h in by_line["hospitals"])
    status, by_road = await road.call("GET", path, await road.login("operator"))
    assert status == 200
    tier = {"ready": 0, "unconfirmed": 1, "not_ready": 2}  # readiness first, then ETA (dispatch/hospitals.py)
    expected = sorted(by_road["hospitals"], key=lambda h: (tier[h["readiness"]], to_place(h["lat"]), h["code"]))
    assert [(h["code"], h["eta_s"], h["road_eta"]) for h in by_road["hospitals"]] == [
        (h["code"], to_place(h["lat"]), True) for h in expected]
    line_order = [h["code"] for h in by_line["hospitals"]]
    assert [h["code"] for h in by_road["hospitals"]] != line_order  # the road times did move the order

    osrm[0].mode = "error"  # the road service fails: the straight-line list stands, nothing is lost
    status, fallback = await road.call("GET", path, await road.login("operator"))
    assert status == 200
    assert [(h["code"], h["eta_s"], h["road_eta"]) for h in fallback["hospitals"]] == [
        (h["code"], h["eta_s"], False) for h in by_line["hospitals"]]


async def test_the_hospital_s_notice_gives_the_carrying_unit_s_road_time(
    apis: tuple[Api, Api], osrm: tuple[Osrm, str], con: asyncpg.Connection,
) -> None:
    """The hospital expects the patient in the time the road gives, as the operator's ranking did; by the straight line
    when the road service fails."""
    plain, road = apis
    fake, _ = osrm
    served = await served_incident(road, con)
    status, body = await road.call("POST", f"/api/incidents/{served.incident_id}/destination", served.operator, json={"facility": HOSPITAL})
    assert status == 200, body
    hospital = await road.login("hospital")
    for step in ("on_scene", "transporting"):
        assert (await served.phone.request({"type": "status", "status": step}))["status"] == step
    fake.requests.clear()
    [by_road] = await notices(road, hospital, served.incident_id)
    [request] = fake.requests  # the carrying unit to the hospital: source 0, one destination
    assert (request.query["sources"], request.query["destinations"]) == ("0", "1")
    [unit] = by_road["units"]
    assert unit["unit_id"] == served.unit_id
    assert unit["eta_s"] == by_road["eta_s"] == pytest.approx(600.0 * scale(unit["kind"]))

    [by_line] = await notices(plain, await plain.login("hospital"), served.incident_id)
    assert by_line["eta_s"] != pytest.approx(by_road["eta_s"])
    fake.mode = "error"
    [fallback] = await notices(road, hospital, served.incident_id)
    assert fallback["eta_s"] == pytest.approx(by_line["eta_s"])
