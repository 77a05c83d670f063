"""The Tangerang Selatan demo region: what loading it puts in the database, once, and only into an empty one."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from server import audit, db, demo_region, users
from server.passwords import Passwords
from tests.conftest import TEST_AUTH

COUNTED = ("kecamatan", "kelurahan", "facilities", "units", "users", "meta", "audit_log", "sessions")


async def counts(con: asyncpg.Connection) -> dict[str, int]:
    return {table: await con.fetchval(f"SELECT count(*) FROM {table}") for table in COUNTED}


async def test_region_has_the_real_administrative_shape(con: asyncpg.Connection) -> None:
    assert await con.fetchval("SELECT count(*) FROM kecamatan") == 7
    assert await con.fetchval("SELECT count(*) FROM kelurahan") == 54
    kinds = dict(await con.fetch("SELECT kind, count(*) FROM facilities GROUP BY kind"))
    assert kinds["puskesmas"] == 35
    assert kinds["hospital"] >= 6
    assert kinds["command_post"] == 1
    # Every kelurahan and puskesmas belongs to a kecamatan that exists (foreign keys), and all 7 are used.
    assert await con.fetchval("SELECT count(DISTINCT kecamatan) FROM kelurahan") == 7
    assert await demo_region.is_demo(con)
    assert (await con.fetchval("SELECT value FROM meta WHERE key = 'region'"))["name"] == "Kota Tangerang Selatan"


async def test_one_motorbike_team_per_kelurahan(con: asyncpg.Connection) -> None:
    rows = await con.fetch("SELECT id, callsign, kelurahan, crew FROM units WHERE kind = 'motorbike'")
    assert len(rows) == 54
    assert {r["kelurahan"] for r in rows} == {r["code"] for r in await con.fetch("SELECT code FROM kelurahan")}
    assert all(len(r["crew"]) == 2 for r in rows), "a motorbike team is two paramedics"
    assert {r["callsign"] for r in rows} == {f"NS-{n:02d}" for n in range(1, 55)}


async def test_ambulances_at_every_puskesmas_hospital_and_the_command_post(con: asyncpg.Connection) -> None:
    rows = await con.fetch(
        """SELECT f.code, f.kind, count(u.id) AS ambulances
           FROM facilities f LEFT JOIN units u ON u.base_facility = f.code AND u.kind = 'ambulance'
           GROUP BY f.code, f.kind"""
    )
    assert rows
    for r in rows:
        assert r["ambulances"] >= 1, f"no ambulance at {r['kind']} {r['code']}"
    # Every ambulance has a base facility, and its base is that facility's location.
    mismatched = await con.fetchval(
        """SELECT count(*) FROM units u LEFT JOIN facilities f ON f.code = u.base_facility
           WHERE u.kind = 'ambulance' AND (f.code IS NULL OR (u.base_lat, u.base_lon) <> (f.lat, f.lon))"""
    )
    assert mismatched == 0


async def test_every_unit_base_and_position_lies_inside_the_region(con: asyncpg.Connection) -> None:
    bbox = demo_region.region_data()["region"]["bbox"]
    rows = await con.fetch("SELECT id, status, base_lat, base_lon, position_lat, position_lon, position_at FROM units")
    assert len(rows) == 54 + 35 + await con.fetchval("SELECT count(*) FROM facilities WHERE kind = 'hospital'") + 4
    for r in rows:
        assert r["position_at"] is not None and r["status"] == "available", r["id"]
        for lat, lon in ((r["base_lat"], r["base_lon"]), (r["position_lat"], r["position_lon"])):
            assert bbox["south"] <= lat <= bbox["north"], (r["id"], lat)
            assert bbox["west"] <= lon <= bbox["east"], (r["id"], lon)


async def test_the_six_demo_users_have_their_roles_and_bindings(con: asyncpg.Connection) -> None:
    rows = {
        r["username"]: r
        for r in await con.fetch(
            """SELECT u.username, u.role, u.unit_id, u.facility_code, u.specialties, u.disabled_at,
                      un.id AS unit_found, f.kind AS facility_kind
               FROM users u LEFT JOIN units un ON un.id = u.unit_id LEFT JOIN facilities f ON f.code = u.facility_code"""
        )
    }
    assert {name: r["role"] for name, r in rows.items()} == {
        "operator": "operator", "field": "field_team", "puskesmas": "puskesmas",
        "specialist": "specialist", "hospital": "hospital", "admin": "admin",
    }
    assert all(r["disabled_at"] is None for r in rows.values())
    assert rows["field"]["unit_found"] is not None
    assert rows["puskesmas"]["facility_kind"] == "puskesmas"
    assert rows["hospital"]["facility_kind"] == "hospital"
    assert rows["specialist"]["specialties"]
    for name in ("operator", "specialist", "admin"):
        assert rows[name]["unit_id"] is None and rows[name]["facility_code"] is None, name
    passwords = Passwords(TEST_AUTH)
    for name in rows:
        stored = await con.fetchval("SELECT password_hash FROM users WHERE username = $1", name)
        assert await passwords.verify(stored, demo_region.DEMO_PASSWORD), name


async def test_loading_twice_returns_false_and_changes_nothing(con: asyncpg.Connection) -> None:
    before = await counts(con)
    assert await demo_region.load_demo(con, Passwords(TEST_AUTH)) is False
    assert await counts(con) == before


async def test_a_demo_database_from_an_earlier_version_gets_the_logins_it_lacks(con: asyncpg.Connection) -> None:
    """The README's demo logins work on a demo database kept under var/ since before a login was added."""
    await con.execute("DELETE FROM users WHERE username IN ('hospital', 'specialist')")
    await con.execute("UPDATE users SET disabled_at = now() WHERE username = 'puskesmas'")
    before = await counts(con)
    assert await demo_region.load_demo(con, Passwords(TEST_AUTH)) is False
    rows = {r["username"]: r for r in await con.fetch("SELECT username, role, facility_code, disabled_at, password_hash FROM users")}
    assert rows["hospital"]["role"] == "hospital" and rows["hospital"]["facility_code"] == "rs-rsu-kota-tangsel"
    assert await Passwords(TEST_AUTH).verify(rows["specialist"]["password_hash"], demo_region.DEMO_PASSWORD)
    assert rows["puskesmas"]["disabled_at"] is not None  # one there is left as it is
    assert await con.fetchval("SELECT detail FROM audit_log WHERE action = 'demo.users'") == {"added": ["specialist", "hospital"]}
    assert await counts(con) == before | {"users": before["users"] + 2, "audit_log": before["audit_log"] + 1}
    assert await demo_region.load_demo(con, Passwords(TEST_AUTH)) is False  # and once complete, nothing more
    assert await con.fetchval("SELECT count(*) FROM audit_log WHERE action = 'demo.users'") == 1


async def test_loading_into_an_empty_database(empty_dsn: str) -> None:
    con = await db.connect(empty_dsn)
    try:
        assert not await demo_region.is_demo(con)
        assert await demo_region.load_demo(con, Passwords(TEST_AUTH)) is True
        assert await demo_region.is_demo(con)
        assert await con.fetchval("SELECT count(*) FROM audit_log WHERE action = 'demo.load'") == 1
        assert await con.fetchval("SELECT count(*) FROM users") == 6
    finally:
        await con.close()


async def test_two_connections_loading_at_once_load_it_once(empty_dsn: str) -> None:
    first, second = await db.connect(empty_dsn), await db.connect(empty_dsn)
    try:
        passwords = Passwords(TEST_AUTH)
        results = await asyncio.gather(demo_region.load_demo(first, passwords), demo_region.load_demo(second, passwords))
        assert sorted(results) == [False, True]
        assert await first.fetchval("SELECT count(*) FROM units WHERE kind = 'motorbike'") == 54
        assert await first.fetchval("SELECT count(*) FROM audit_log WHERE action = 'demo.load'") == 1
    finally:
        await first.close()
        await second.close()


async def test_demo_is_refused_on_a_database_with_real_users(empty_dsn: str) -> None:
    con = await db.connect(empty_dsn)
    try:
        passwords = Passwords(TEST_AUTH)
        await users.add_user(
            con, passwords, actor=audit.CLI, username="siti", role="operator",
            password="a-real-password", min_password_length=8,
        )
        before = await counts(con)
        with pytest.raises(demo_region.DemoRefused):
            await demo_region.load_demo(con, passwords)
        assert await counts(con) == before
        assert await con.fetchval("SELECT count(*) FROM facilities") == 0
        assert not await demo_region.is_demo(con)
        assert [u.username for u in await users.list_users(con)] == ["siti"]
    finally:
        await con.close()


async def test_hospitals_have_realistic_services(con: asyncpg.Connection) -> None:
    services = {r["code"]: set(r["services"]) for r in await con.fetch("SELECT code, services FROM facilities WHERE kind = 'hospital'")}
    with_cath_lab = {code for code, s in services.items() if "cath_lab" in s}
    assert with_cath_lab and with_cath_lab != set(services), "some hospitals have a cath lab, not all"
    # The small public hospital has fewer services than a big private one.
    assert len(services["rs-rsud-serpong-utara"]) < len(services["rs-eka-hospital-bsd"])
    assert not await con.fetchval("SELECT count(*) FROM facilities WHERE kind <> 'hospital' AND cardinality(services) > 0")


@pytest.mark.parametrize(("services", "field"), [(["ct", "cathlab"], "hospitals[1].services[1]"), (None, "hospitals[1].services")])
async def test_bad_hospital_services_in_the_region_data_are_refused_naming_the_field(
    empty_dsn: str, monkeypatch: pytest.MonkeyPatch, services: object, field: str,
) -> None:
    data = demo_region.region_data()
    data["hospitals"][1]["services"] = services
    monkeypatch.setattr(demo_region, "region_data", lambda: data)
    con = await db.connect(empty_dsn)
    try:
        with pytest.raises(demo_region.DemoRefused) as err:
            await demo_region.load_demo(con, Passwords(TEST_AUTH))
        assert f"{field}:" in str(err.value)
        assert await con.fetchval("SELECT count(*) FROM facilities") == 0
        assert await con.fetchval("SELECT count(*) FROM kecamatan") == 0
        assert not await demo_region.is_demo(con)
    finally:
        await con.close()
