"""The hospitals' availability board: a hospital sets its own free beds and services now, everybody who chooses a
hospital reads them live, figures age into "stale" by the database's clock, and the destination list ranks with them."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from server.config import HospitalSettings
from tests.conftest import Api, app_config, start_api
from tests.server.dispatch_support import Socket, call_body
from tests.server.test_consults import add_users, close_api

RSU = "rs-rsu-kota-tangsel"  # the demo 'hospital' account's
EKA = "rs-eka-hospital-bsd"
PAMULANG = {"lat": -6.3445, "lon": 106.7245}  # a few hundred metres from RSU Kota Tangerang Selatan
PATH = f"/api/hospitals/{RSU}/availability"


async def figures(con: asyncpg.Connection, code: str = RSU) -> tuple[dict[str, tuple[int, str]], dict[str, tuple[bool, str]]]:
    beds = {r["bed_class"]: (r["free"], r["set_by"]) for r in await con.fetch("SELECT * FROM hospital_beds WHERE facility_code = $1", code)}
    states = {r["service"]: (r["available"], r["set_by"])
              for r in await con.fetch("SELECT * FROM hospital_service_states WHERE facility_code = $1", code)}
    return beds, states


async def age(con: asyncpg.Connection, seconds: float, code: str = RSU) -> None:
    """Move a hospital's figures back in time: the clock the server judges them by is the database's."""
    for table in ("hospital_beds", "hospital_service_states"):
        await con.execute(f"UPDATE {table} SET set_at = now() - make_interval(secs => $2) WHERE facility_code = $1", code, seconds)


def entry(board: dict[str, Any], code: str) -> dict[str, Any]:
    found: dict[str, Any] = next(h for h in board["hospitals"] if h["code"] == code)
    return found


async def test_the_demo_hospitals_start_with_fresh_figures_set_by_the_demo(api: Api, con: asyncpg.Connection) -> None:
    status, board = await api.call("GET", "/api/hospitals/availability", await api.login("specialist"))
    assert status == 200
    assert board["bed_classes"] == ["igd", "icu", "nicu", "picu", "isolation", "ward"] and board["stale_after_s"] == 21600
    assert len(board["hospitals"]) == await con.fetchval("SELECT count(*) FROM facilities WHERE kind = 'hospital'")
    for h in board["hospitals"]:
        assert set(h["beds"]) == set(board["bed_classes"]) and set(h["services_now"]) == set(h["services"])
        for figure in [*h["beds"].values(), *h["services_now"].values()]:
            assert figure is not None and figure["by"] == "demo" and figure["stale"] is False and figure["age_s"] < 3600
        assert h["beds"]["igd"]["free"] > 0
    # A CT scanner under maintenance in the demo: the service is the hospital's, but not available now.
    assert entry(board, "rs-sari-asih-ciputat")["services_now"]["ct"]["available"] is False


async def test_a_hospital_sets_its_figures_and_everyone_who_chooses_hospitals_sees_them_live(api: Api, con: asyncpg.Connection) -> None:
    (other,) = await add_users(api.dsn, "igd-eka-", 1, role="hospital", facility=EKA)
    sockets = {role: await Socket.open(api, "/ws/events", await api.login(user, *pw))
               for role, user, pw in [("operator", "operator", ()), ("specialist", "specialist", ()), ("admin", "admin", ()),
                                      ("other_hospital", other, ("demo119x",))]}
    hospital = await api.login("hospital")
    status, body = await api.call("PATCH", PATH, hospital, json={"beds": {"igd": 0, "icu": 3}, "services": {"ct": False}})
    assert status == 200, body
    assert body["hospital"]["beds"]["igd"] == {**body["hospital"]["beds"]["igd"], "free": 0, "by": "hospital", "stale": False}
    assert body["hospital"]["services_now"]["ct"]["available"] is False
    assert body["hospital"]["beds"]["nicu"]["by"] == "demo"  # figures not named keep their value and time
    beds, states = await figures(con)
    assert beds["igd"] == (0, "hospital") and beds["icu"] == (3, "hospital") and beds["ward"] == (18, "demo")
    assert states["ct"] == (False, "hospital") and states["icu"] == (True, "demo")
    for socket in sockets.values():
        event = await socket.event("hospital.availability", facility=RSU)
        assert event["data"]["changed"] == {"beds": {"igd": 0, "icu": 3}, "services": {"ct": False}}
        assert event["data"]["hospital"]["beds"]["igd"]["free"] == 0
    assert await con.fetchval("SELECT count(*) FROM audit_log WHERE action = 'hospital.availability' AND object = $1", f"facility:{RSU}") == 1
    # Nothing of it reaches the roles that choose no hospital: a puskesmas socket replaying from the start has no such event.
    puskesmas = await Socket.open(api, "/ws/events", await api.login("puskesmas"), after=0)
    await puskesmas.ws.send(json.dumps({"type": "ping"}))
    await puskesmas.wait_for(lambda m: m.get("type") == "pong")
    assert not [m for m in puskesmas.messages if m.get("event") == "hospital.availability"]
    for socket in [*sockets.values(), puskesmas]:
        await socket.close()


async def test_the_same_update_twice_leaves_the_same_figures_and_confirms_their_time(api: Api, con: asyncpg.Connection) -> None:
    hospital = await api.login("hospital")
    await age(con, 3600)
    for _ in range(2):
        status, body = await api.call("PATCH", PATH, hospital, json={"beds": {"igd": 5}})
        assert status == 200 and body["hospital"]["beds"]["igd"]["free"] == 5 and body["hospital"]["beds"]["igd"]["age_s"] < 60
    assert (await figures(con))[0]["igd"] == (5, "hospital")
    assert await con.fetchval("SELECT count(*) FROM hospital_beds WHERE facility_code = $1 AND bed_class = 'igd'", RSU) == 1
    # Only the figure named was confirmed: the others keep their hour.
    assert await con.fetchval("SELECT now() - set_at > interval '59 minutes' FROM hospital_beds WHERE facility_code = $1 AND bed_class = 'icu'", RSU)


@pytest.mark.parametrize(("body", "field"), [
    ({"beds": {"igd": -1}}, "beds.igd"),
    ({"beds": {"igd": 10000}}, "beds.igd"),
    ({"beds": {"igd": 2.5}}, "beds.igd"),
    ({"beds": {"igd": True}}, "beds.igd"),
    ({"beds": {"igd": "3"}}, "beds.igd"),
    ({"beds": {"igd": 2, "maternity": 4}}, "beds.maternity"),
    ({"beds": {"igd": 2}, "services": {"cath_lab": True}}, "services.cath_lab"),  # RSU Kota Tangsel has no cath lab
    ({"services": {"ct": "yes"}}, "services.ct"),
    ({"services": {"ct": 1}}, "services.ct"),
    ({}, "beds"),
    ({"beds": {}, "services": {}}, "beds"),
    ({"beds": {"igd": 2}, "icu": 3}, "icu"),
    ({"beds": [2]}, "beds"),
])
async def test_bad_input_is_refused_naming_the_field_and_changes_nothing(
    api: Api, con: asyncpg.Connection, body: dict[str, Any], field: str,
) -> None:
    before = await figures(con)
    events = await con.fetchval("SELECT count(*) FROM events")
    status, answer = await api.call("PATCH", PATH, await api.login("hospital"), json=body)
    assert status == 422, answer
    assert answer["error"]["field"] == field
    assert await figures(con) == before and await con.fetchval("SELECT count(*) FROM events") == events


async def test_only_the_hospital_s_own_account_or_an_admin_may_set_its_figures(api: Api, con: asyncpg.Connection) -> None:
    (other,) = await add_users(api.dsn, "igd-eka-", 1, role="hospital", facility=EKA)
    other_token = await api.login(other, "demo119x")
    before = await figures(con)
    status, answer = await api.call("PATCH", PATH, other_token, json={"beds": {"igd": 0}})
    assert status == 403 and answer["error"]["field"] == "code"
    assert await figures(con) == before
    # Its own hospital, yes.
    status, _ = await api.call("PATCH", f"/api/hospitals/{EKA}/availability", other_token, json={"beds": {"igd": 1}})
    assert status == 200 and (await figures(con, EKA))[0]["igd"] == (1, other)
    # The Dinkes admin corrects any hospital, under their own name.
    status, _ = await api.call("PATCH", PATH, await api.login("admin"), json={"services": {"obstetrics": False}})
    assert status == 200 and (await figures(con))[1]["obstetrics"] == (False, "admin")
    for role in ("operator", "specialist", "puskesmas", "field"):
        status, _ = await api.call("PATCH", PATH, await api.login(role), json={"beds": {"igd": 0}})
        assert status == 403, role
    status, _ = await api.call("PATCH", "/api/hospitals/pkm-pamulang/availability", await api.login("admin"), json={"beds": {"igd": 0}})
    assert status == 404  # a puskesmas is not a hospital
    status, _ = await api.call("GET", "/api/hospitals/availability", await api.login("puskesmas"))
    assert status == 403


async def test_figures_older_than_the_configured_age_show_as_stale(api: Api, con: asyncpg.Connection) -> None:
    admin = await api.login("admin")
    await age(con, 6 * 3600 - 60)
    board = (await api.call("GET", "/api/hospitals/availability", admin))[1]
    assert entry(board, RSU)["beds"]["igd"]["stale"] is False and entry(board, RSU)["beds"]["igd"]["age_s"] >= 6 * 3600 - 60
    await age(con, 6 * 3600 + 1)
    board = (await api.call("GET", "/api/hospitals/availability", admin))[1]
    rsu = entry(board, RSU)
    assert all(f["stale"] for f in [*rsu["beds"].values(), *rsu["services_now"].values()])
    assert entry(board, EKA)["beds"]["igd"]["stale"] is False
    # A figure never reported is unknown (null), not 0.
    await con.execute("DELETE FROM hospital_beds WHERE facility_code = $1 AND bed_class = 'picu'", RSU)
    assert entry((await api.call("GET", "/api/hospitals/availability", admin))[1], RSU)["beds"]["picu"] is None


@pytest.fixture
async def quick_stale_api(demo_dsn: str) -> AsyncIterator[Api]:
    config = dataclasses.replace(app_config(demo_dsn), hospitals=HospitalSettings(availability_stale_s=60))
    client = await start_api(demo_dsn, config)
    yield client
    await close_api(client)


async def test_the_stale_age_comes_from_the_configuration(quick_stale_api: Api, con: asyncpg.Connection) -> None:
    await age(con, 61)
    board = (await quick_stale_api.call("GET", "/api/hospitals/availability", await quick_stale_api.login("operator")))[1]
    assert board["stale_after_s"] == 60 and entry(board, RSU)["beds"]["igd"]["stale"] is True


async def hospitals_for(api: Api, token: str, call_type: str, phone: str) -> dict[str, Any]:
    _, created = await api.call("POST", "/api/calls", token, json=call_body(location=PAMULANG, call_type=call_type, phone=phone))
    status, ranked = await api.call("GET", f"/api/incidents/{created['incident']['id']}/hospitals", token)
    assert status == 200
    return ranked  # type: ignore[no-any-return]


def in_eta_order(hospitals: list[dict[str, Any]]) -> bool:
    keys = [(h["eta_s"], h["code"]) for h in hospitals]
    return keys == sorted(keys)


async def test_the_destination_list_ranks_with_beds_and_services_and_warns_about_the_nearest(api: Api, con: asyncpg.Connection) -> None:
    operator, hospital = await api.login("operator"), await api.login("hospital")
    # With the demo's figures (every IGD has beds) a fever in Pamulang goes to the nearest, RSU Kota Tangsel, by plain ETA.
    ranked = await hospitals_for(api, operator, "child_fever", "0812-1001")
    assert ranked["hospitals"][0]["code"] == RSU and in_eta_order(ranked["hospitals"]) and ranked["warnings"] == []
    assert ranked["hospitals"][0]["beds"]["igd"]["free"] == 4 and ranked["hospitals"][0]["readiness"] == "ready"

    # Its IGD fills: it moves below every hospital with a bed (still listed), and the operator is told.
    await api.call("PATCH", PATH, hospital, json={"beds": {"igd": 0}})
    ranked = await hospitals_for(api, operator, "child_fever", "0812-1002")
    codes = [h["code"] for h in ranked["hospitals"]]
    assert codes[-1] == RSU and len(codes) == len(set(codes)) and in_eta_order(ranked["hospitals"][:-1])
    (warning,) = ranked["warnings"]
    assert warning == {"kind": "nearest_no_igd_bed", "service": None, "hospital": RSU, "hospital_name": "RSU Kota Tangerang Selatan",
                       "nearest_capable": codes[0]}

    # A stroke needs CT: RSU has one but it is down now, so those with CT running come first; Sari Asih's CT is down too.
    await api.call("PATCH", PATH, hospital, json={"beds": {"igd": 2}, "services": {"ct": False}})
    ranked = await hospitals_for(api, operator, "stroke", "0812-1003")
    capable = [h for h in ranked["hospitals"] if h["capable"]]
    ready = [h for h in capable if h["readiness"] == "ready"]
    assert [h["code"] for h in capable[len(ready):]] == sorted(  # the two with CT down, by ETA
        [RSU, "rs-sari-asih-ciputat"], key=lambda c: next(h["eta_s"] for h in capable if h["code"] == c))
    assert in_eta_order(ready) and all(h["services_now"]["ct"]["available"] for h in ready)
    assert [w["kind"] for w in ranked["warnings"]] == ["nearest_service_down"] and ranked["warnings"][0]["nearest_capable"] == ready[0]["code"]

    # Six hours on, RSU's figures are stale: no longer believed either way, ranked among the unconfirmed, and warned.
    await age(con, 6 * 3600 + 1)
    ranked = await hospitals_for(api, operator, "stroke", "0812-1004")
    rsu = next(h for h in ranked["hospitals"] if h["code"] == RSU)
    assert rsu["readiness"] == "unconfirmed" and rsu["beds"]["igd"]["stale"] and rsu["services_now"]["ct"]["stale"]
    assert [w["kind"] for w in ranked["warnings"]] == ["nearest_figures_stale"]


async def test_two_desks_updating_at_once_lose_none_of_each_other_s_figures(api: Api, con: asyncpg.Connection) -> None:
    (second,) = await add_users(api.dsn, "igd-rsu-", 1, role="hospital", facility=RSU)
    desks = [await api.login("hospital"), await api.login(second, "demo119x")]
    rounds = 30

    async def desk(token: str, own: list[str], shared: list[str], base: int) -> list[int]:
        statuses = []
        for n in range(rounds):
            # Each desk has classes of its own, and both name the ward and isolation, in opposite orders: rows are
            # locked in one order whatever the body's, so the two never deadlock.
            beds = {c: base + n for c in [*own, *shared]}
            statuses.append((await api.call("PATCH", PATH, token, json={"beds": beds, "services": {"ct": n % 2 == 0}}))[0])
        return statuses

    results = await asyncio.gather(desk(desks[0], ["igd", "icu", "nicu"], ["ward", "isolation"], 0),
                                   desk(desks[1], ["picu"], ["isolation", "ward"], 100))
    assert all(s == 200 for statuses in results for s in statuses), results
    beds, _ = await figures(con)
    assert {c: beds[c] for c in ("igd", "icu", "nicu")} == dict.fromkeys(("igd", "icu", "nicu"), (rounds - 1, "hospital"))
    assert beds["picu"] == (100 + rounds - 1, second)
    assert beds["ward"][0] in (rounds - 1, 100 + rounds - 1) and beds["isolation"][0] in (rounds - 1, 100 + rounds - 1)
    assert await con.fetchval("SELECT count(*) FROM events WHERE type = 'hospital.availability'") == 2 * rounds


async def test_a_service_the_hospital_no_longer_has_drops_off_its_figures_without_breaking_the_ranking(
    api: Api, con: asyncpg.Connection,
) -> None:
    # The region data is edited: RSU Kota Tangsel's CT goes (its reported state stays in the table).
    await con.execute("UPDATE facilities SET services = array_remove(services, 'ct') WHERE code = $1", RSU)
    board = (await api.call("GET", "/api/hospitals/availability", await api.login("operator")))[1]
    assert "ct" not in entry(board, RSU)["services_now"] and "ct" not in entry(board, RSU)["services"]
    ranked = await hospitals_for(api, await api.login("operator"), "stroke", "0812-1005")
    rsu = next(h for h in ranked["hospitals"] if h["code"] == RSU)
    assert rsu["capable"] is False and "ct" not in rsu["services_now"]
    status, answer = await api.call("PATCH", PATH, await api.login("hospital"), json={"services": {"ct": True}})
    assert status == 422 and answer["error"]["field"] == "services.ct"
