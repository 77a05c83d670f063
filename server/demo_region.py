"""The demo region, Kota Tangerang Selatan: loaded once into an empty database by ``serve --demo``; a demo database
made by an earlier version gets the demo logins added since.

Names of kecamatan, kelurahan, puskesmas and hospitals are real (see the data
file's note for which coordinates are approximate). The units are synthetic:
54 two-paramedic motorbike teams, one per kelurahan as in the city's Ngider
Sehat programme, registered as first-response units, and ambulances at every
puskesmas, at the hospitals and at the PSC 119 command post.
"""

from __future__ import annotations

import json
import logging
import math
from importlib import resources
from typing import Any

import asyncpg

from dispatch.errors import InvalidInput
from dispatch.hospitals import parse_services
from server import audit, demo_availability
from server.passwords import Passwords

log = logging.getLogger(__name__)

DEMO_PASSWORD = "demo119"
DEMO_LOCK = 119_000_002

MOTORBIKE_CAPS = ["bls", "aed"]
PUSKESMAS_AMBULANCE_CAPS = ["bls", "aed", "transport", "obstetric"]
HOSPITAL_AMBULANCE_CAPS = ["bls", "als", "transport", "aed", "neonatal"]
COMMAND_POST_AMBULANCE_CAPS = ["bls", "als", "transport", "aed", "rescue"]
COMMAND_POST_AMBULANCES = 4
DEMO_SPECIALTIES = ["penyakit_dalam", "anak", "jantung"]


class DemoRefused(Exception):
    pass


def region_data() -> dict[str, Any]:
    text = resources.files("server.demo").joinpath("tangsel.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def hospital_services(data: dict[str, Any]) -> dict[str, list[str]]:
    """Each hospital's services, checked: bad region data is refused naming the field (``hospitals[2].services[0]``)."""
    try:
        return {h["code"]: sorted(parse_services(h.get("services"), f"hospitals[{n}].services"))
                for n, h in enumerate(data["hospitals"])}
    except InvalidInput as exc:
        raise DemoRefused(f"--demo refused: the region data is invalid: {exc}") from None


def _offset(lat: float, lon: float, metres: float, bearing_deg: float) -> tuple[float, float]:
    # Small offsets only (a parking bay beside the base): a flat-earth step is accurate enough.
    dlat = metres * math.cos(math.radians(bearing_deg)) / 111_320
    dlon = metres * math.sin(math.radians(bearing_deg)) / (111_320 * math.cos(math.radians(lat)))
    return round(lat + dlat, 6), round(lon + dlon, 6)


def demo_units(data: dict[str, Any]) -> list[dict[str, Any]]:
    units: list[dict[str, Any]] = []
    for n, kel in enumerate(sorted(data["kelurahan"], key=lambda k: k["code"]), start=1):
        units.append({
            "id": f"ns-{n:02d}", "callsign": f"NS-{n:02d}", "kind": "motorbike", "capabilities": MOTORBIKE_CAPS,
            "base_facility": None, "base": (kel["lat"], kel["lon"]), "kelurahan": kel["code"],
            "crew": [f"Paramedis {n:02d}A", f"Paramedis {n:02d}B"],
        })
    for n, pkm in enumerate(sorted(data["puskesmas"], key=lambda p: p["code"]), start=1):
        units.append({
            "id": f"amb-pkm-{n:02d}", "callsign": f"AMB-PKM-{n:02d}", "kind": "ambulance",
            "capabilities": PUSKESMAS_AMBULANCE_CAPS, "base_facility": pkm["code"], "base": (pkm["lat"], pkm["lon"]),
            "kelurahan": pkm["kelurahan"], "crew": [f"Perawat PKM {n:02d}", f"Pengemudi PKM {n:02d}"],
        })
    for n, rs in enumerate(sorted(data["hospitals"], key=lambda h: h["code"]), start=1):
        units.append({
            "id": f"amb-rs-{n:02d}", "callsign": f"AMB-RS-{n:02d}", "kind": "ambulance",
            "capabilities": HOSPITAL_AMBULANCE_CAPS, "base_facility": rs["code"], "base": (rs["lat"], rs["lon"]),
            "kelurahan": None, "crew": [f"Dokter RS {n:02d}", f"Perawat RS {n:02d}", f"Pengemudi RS {n:02d}"],
        })
    post = data["command_post"]
    for n in range(1, COMMAND_POST_AMBULANCES + 1):
        units.append({
            "id": f"amb-psc-{n}", "callsign": f"AMB-PSC-{n}", "kind": "ambulance",
            "capabilities": COMMAND_POST_AMBULANCE_CAPS, "base_facility": post["code"], "base": (post["lat"], post["lon"]),
            "kelurahan": None, "crew": [f"Dokter PSC {n}", f"Perawat PSC {n}", f"Pengemudi PSC {n}"],
        })
    return units


async def load_demo(con: asyncpg.Connection, passwords: Passwords) -> bool:
    """Load the demo region and users; True if loaded now, False if it was already there."""
    async with con.transaction():
        await con.execute("SELECT pg_advisory_xact_lock($1)", DEMO_LOCK)
        data = region_data()
        units = demo_units(data)
        if await con.fetchval("SELECT 1 FROM meta WHERE key = 'demo'"):
            await _add_missing_users(con, passwords, data, units)
            return False
        if await con.fetchval("SELECT count(*) FROM users") or await con.fetchval("SELECT count(*) FROM units"):
            raise DemoRefused("--demo refused: this database already holds non-demo users or units")
        services = hospital_services(data)
        await _load_region(con, data, services)
        await demo_availability.load(con, services)
        await _load_units(con, units)
        await _insert_users(con, passwords, _demo_users(data, units))
        await con.execute(
            "INSERT INTO meta (key, value) VALUES ('demo', $1), ('region', $2)",
            {"note": data["note"]}, data["region"],
        )
        await audit.record(con, audit.CLI, "demo.load", "region:tangsel", {"units": len(units)})
    return True


async def is_demo(con: asyncpg.Connection | asyncpg.Pool) -> bool:
    return bool(await con.fetchval("SELECT 1 FROM meta WHERE key = 'demo'"))


async def _load_region(con: asyncpg.Connection, data: dict[str, Any], services: dict[str, list[str]]) -> None:
    await con.executemany("INSERT INTO kecamatan (code, name) VALUES ($1, $2)", [(k["code"], k["name"]) for k in data["kecamatan"]])
    await con.executemany(
        "INSERT INTO kelurahan (code, name, kecamatan, lat, lon, synthetic_location) VALUES ($1, $2, $3, $4, $5, $6)",
        [(k["code"], k["name"], k["kecamatan"], k["lat"], k["lon"], k["synthetic_location"]) for k in data["kelurahan"]],
    )
    rows: list[tuple[Any, ...]] = [
        (p["code"], "puskesmas", p["name"], p["kecamatan"], p["kelurahan"], p["lat"], p["lon"], [],
         {"synthetic_location": p["synthetic_location"], "synthetic_name": p["synthetic_name"]}, [])
        for p in data["puskesmas"]
    ]
    rows += [
        (h["code"], "hospital", h["name"], h["kecamatan"], None, h["lat"], h["lon"], h["specialties"],
         {"ownership": h["kind"], "synthetic_location": h["synthetic_location"]}, services[h["code"]])
        for h in data["hospitals"]
    ]
    post = data["command_post"]
    rows.append((post["code"], "command_post", post["name"], None, None, post["lat"], post["lon"], [],
                 {"synthetic_location": post["synthetic_location"]}, []))
    await con.executemany(
        """INSERT INTO facilities (code, kind, name, kecamatan, kelurahan, lat, lon, specialties, detail, services)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)""",
        rows,
    )


async def _load_units(con: asyncpg.Connection, units: list[dict[str, Any]]) -> None:
    rows: list[tuple[Any, ...]] = []
    for n, u in enumerate(units):
        lat, lon = u["base"]
        # Units start on duty, a little way from their base, with a fresh fix.
        plat, plon = _offset(lat, lon, 60 + (n * 37) % 240, (n * 83) % 360)
        rows.append((u["id"], u["callsign"], u["kind"], u["capabilities"], u["base_facility"], lat, lon,
                     u["kelurahan"], u["crew"], plat, plon))
    await con.executemany(
        """INSERT INTO units (id, callsign, kind, capabilities, base_facility, base_lat, base_lon, kelurahan, crew,
                              status, position_lat, position_lon, position_at, detail)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'available', $10, $11, now(), '{"synthetic": true}')""",
        rows,
    )


def _demo_users(data: dict[str, Any], units: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """(username, display name, role, unit, facility, specialties) of each demo login the README names."""
    first_pkm = sorted(data["puskesmas"], key=lambda p: p["code"])[0]["code"]
    public_hospital = data["hospitals"][0]["code"]  # the city's own RSU
    return [
        ("operator", "Operator PSC 119 (demo)", "operator", None, None, []),
        ("field", "Tim NS-01 (demo)", "field_team", units[0]["id"], None, []),
        ("puskesmas", "Dokter Puskesmas (demo)", "puskesmas", None, first_pkm, []),
        ("specialist", "Dokter Spesialis (demo)", "specialist", None, None, DEMO_SPECIALTIES),
        ("hospital", "IGD RSU Kota Tangerang Selatan (demo)", "hospital", None, public_hospital, []),
        ("admin", "Admin Dinkes (demo)", "admin", None, None, []),
    ]


async def _insert_users(con: asyncpg.Connection, passwords: Passwords, rows: list[tuple[Any, ...]]) -> None:
    hashed = await passwords.hash(DEMO_PASSWORD)
    await con.executemany(
        """INSERT INTO users (username, display_name, role, unit_id, facility_code, specialties, password_hash)
           VALUES ($1, $2, $3, $4, $5, $6, $7)""",
        [(*u, hashed) for u in rows],
    )


async def _add_missing_users(con: asyncpg.Connection, passwords: Passwords, data: dict[str, Any], units: list[dict[str, Any]]) -> None:
    """A demo database made by an earlier version lacks the logins added since (the README names them all): add those
    whose unit or facility it has. One there already is left as it is, disabled or with a changed password."""
    found = await con.fetchrow("""SELECT (SELECT array_agg(username) FROM users) AS users, (SELECT array_agg(id) FROM units) AS units,
                                         (SELECT array_agg(code) FROM facilities) AS facilities""")
    known, have_units, have_facilities = (set(found[name] or ()) for name in ("users", "units", "facilities"))
    missing = [u for u in _demo_users(data, units)
               if u[0] not in known and (u[3] is None or u[3] in have_units) and (u[4] is None or u[4] in have_facilities)]
    if not missing:
        return
    await _insert_users(con, passwords, missing)
    added = [u[0] for u in missing]
    await audit.record(con, audit.CLI, "demo.users", "region:tangsel", {"added": added})
    log.info("added the demo logins this demo database lacked: %s", ", ".join(added))
