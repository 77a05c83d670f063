"""Choosing the destination: the incident's hospital list ranks those that can treat the call first and warns when the
nearest cannot; the triage table names the service a call type needs."""

from __future__ import annotations

from typing import Any

import asyncpg

from dispatch.triage import default_triage_table
from server import migrate
from tests.conftest import Api
from tests.server.dispatch_support import call_body

# Pamulang, a few hundred metres from the city's public hospital (RSU Kota Tangerang Selatan), which has no cath lab.
PAMULANG = {"lat": -6.3445, "lon": 106.7245}


def in_eta_order(hospitals: list[dict[str, Any]]) -> bool:
    keys = [(h["eta_s"], h["code"]) for h in hospitals]
    return keys == sorted(keys)


async def test_chest_pain_beside_a_hospital_without_a_cath_lab(api: Api, con: asyncpg.Connection) -> None:
    token = await api.login("operator")
    status, created = await api.call("POST", "/api/calls", token, json=call_body(location=PAMULANG, phone="0812-0001"))
    assert status == 201
    status, body = await api.call("GET", f"/api/incidents/{created['incident']['id']}/hospitals", token)
    assert status == 200
    assert body["needed_service"] == "cath_lab"
    hospitals = body["hospitals"]
    assert len(hospitals) == await con.fetchval("SELECT count(*) FROM facilities WHERE kind = 'hospital'")
    for h in hospitals:  # the fields the console already uses are kept
        assert {"code", "name", "lat", "lon", "specialties", "services", "distance_m", "eta_s", "capable"} <= h.keys()
        assert h["capable"] == ("cath_lab" in h["services"])
    capable = [h for h in hospitals if h["capable"]]
    incapable = [h for h in hospitals if not h["capable"]]
    assert capable and incapable and hospitals == capable + incapable
    assert in_eta_order(capable) and in_eta_order(incapable)
    nearest = min(hospitals, key=lambda h: (h["eta_s"], h["code"]))
    assert nearest["code"] == "rs-rsu-kota-tangsel" and not nearest["capable"]
    assert body["warnings"] == [{
        "kind": "nearest_lacks_service", "service": "cath_lab", "hospital": "rs-rsu-kota-tangsel",
        "hospital_name": "RSU Kota Tangerang Selatan", "nearest_capable": capable[0]["code"],
    }]


async def test_a_call_type_needing_no_service_lists_every_hospital_by_eta(api: Api) -> None:
    token = await api.login("operator")
    _, created = await api.call("POST", "/api/calls", token,
                                json=call_body(location=PAMULANG, call_type="child_fever", phone="0812-0002"))
    status, body = await api.call("GET", f"/api/incidents/{created['incident']['id']}/hospitals", token)
    assert status == 200 and body["needed_service"] is None and body["warnings"] == []
    assert all(h["capable"] for h in body["hospitals"]) and in_eta_order(body["hospitals"])
    assert body["hospitals"][0]["code"] == "rs-rsu-kota-tangsel"


async def test_the_triage_table_names_the_service_and_refuses_an_unknown_one(api: Api, con: asyncpg.Connection) -> None:
    status, table = await api.call("GET", "/api/triage", await api.login("operator"))
    services = {c["code"]: c["service"] for c in table["call_types"]}
    assert services["chest_pain"] == "cath_lab" and services["stroke"] == "ct" and services["child_fever"] is None
    admin = await api.login("admin")
    body = {"label_id": "Luka bakar kimia", "label_en": "Chemical burns", "priority": "merah",
            "capabilities": ["bls", "transport"], "service": "burns"}
    status, saved = await api.call("PUT", "/api/triage/chemical_burns", admin, json=body)
    assert status == 200 and saved["call_type"]["service"] == "burns"
    status, bad = await api.call("PUT", "/api/triage/chemical_burns", admin, json={**body, "service": "burn_unit"})
    assert status == 422 and bad["error"]["field"] == "service"
    assert await con.fetchval("SELECT service FROM triage_types WHERE code = 'chemical_burns'") == "burns"
    # The new call type's service reaches the hospital list at once: only Premier Bintaro has a burn unit in the demo.
    operator = await api.login("operator")
    _, created = await api.call("POST", "/api/calls", operator,
                                json=call_body(location=PAMULANG, call_type="chemical_burns", phone="0812-0003"))
    status, ranked = await api.call("GET", f"/api/incidents/{created['incident']['id']}/hospitals", operator)
    assert ranked["needed_service"] == "burns"
    assert [h["code"] for h in ranked["hospitals"] if h["capable"]] == ["rs-premier-bintaro"]
    assert [w["kind"] for w in ranked["warnings"]] == ["nearest_lacks_service"]


async def test_the_upgrade_gives_existing_default_call_types_the_default_table_s_services(bare_dsn: str) -> None:
    con = await asyncpg.connect(bare_dsn)
    try:
        available = migrate.available()
        at = next(n for n, m in enumerate(available) if m.name.endswith("_hospital_services.sql"))
        before, services = available[:at], available[at]
        for migration in before:
            await con.execute(migration.sql)
        table = default_triage_table()
        await con.executemany(
            "INSERT INTO triage_types (code, label_id, label_en, priority, capabilities) VALUES ($1, $1, $1, 'merah', '{bls}')",
            [(t.code,) for t in table] + [("dog_bite",)],
        )
        await con.execute("INSERT INTO facilities (code, kind, name, lat, lon) VALUES ('rs-x', 'hospital', 'RS X', -6.3, 106.7)")
        await con.execute(services.sql)
        upgraded = dict(await con.fetch("SELECT code, service FROM triage_types"))
        assert upgraded == {**{t.code: t.service for t in table}, "dog_bite": None}
        assert await con.fetchval("SELECT services FROM facilities WHERE code = 'rs-x'") == []
    finally:
        await con.close()
