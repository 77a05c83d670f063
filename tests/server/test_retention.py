"""Retention: the sweep run with its clock moved forward deletes or pseudonymises exactly what is due,
keeps the response-time metrics, the timeline and the EIDO export, never touches what is open, changes
nothing the second time, and says what it did in one audit entry and one run row."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from server import audit, db, retention, rooms
from server.config import Config, ConfigError, RetentionSettings, load_config
from server.keys import POOL, ROOMS
from signaling.ids import UserId
from tests.conftest import Api, start_api
from tests.server.dispatch_support import call_body
from tests.server.process_support import Served, cli_env, psc119
from tests.server.test_consult_files import PNG, _post
from tests.server.test_consults import OUTCOME, accepted_consult, close_api, consult_config

DAY = dt.timedelta(days=1)
CLOSED_PHONE = "081111222333"
OPEN_PHONE = "082222333444"


def config_for(dsn: str, var_dir: Path, **retention_settings: Any) -> Config:
    return dataclasses.replace(consult_config(dsn, var_dir), retention=RetentionSettings(**retention_settings))


async def _incident(api: Api, operator: str, phone: str, *, close: bool) -> str:
    status, created = await api.call("POST", "/api/calls", operator, json=call_body(phone=phone, caller_name="Pak Budi",
                                                                     notes="rumah pagar hijau"))
    assert status == 201, created
    incident_id = created["incident"]["id"]
    unit_id = created["recommendations"][0]["unit_id"]
    status, body = await api.call("POST", f"/api/incidents/{incident_id}/dispatch", operator, json={"unit_id": unit_id})
    assert status == 201, body
    if close:  # the crew's reports come in by radio: on its way, on scene, treated there
        for step, reason in (("en_route", None), ("on_scene", None), ("available", "treated_on_scene")):
            status, body = await api.call("POST", f"/api/units/{unit_id}/status", operator,
                                          json={"status": step, **({"reason": reason} if reason else {})})
            assert status == 200, body
        status, body = await api.call("POST", f"/api/incidents/{incident_id}/close", operator, json={"outcome": "emergency"})
        assert status == 200, body
    return incident_id


async def _consult_with_files(api: Api, con: asyncpg.Connection, var_dir: Path, *, complete: bool) -> tuple[str, str, str]:
    """A consult with an attachment, a chat message and a recording: (id, puskesmas token, attachment id)."""
    consult_id, pk, sp = await accepted_consult(api)
    status, body = await _post(api, consult_id, pk, PNG, "image/png", "ekg pasien.png")
    assert status == 201, body
    specialist = UserId(await con.fetchval("SELECT id FROM users WHERE username = 'specialist'"))
    await api.server.app[ROOMS].chats.submit(consult_id, specialist, "m1", "pasien nyeri dada kiri", None)
    recording = var_dir / "recordings" / f"{consult_id}.webm"
    recording.parent.mkdir(parents=True, exist_ok=True)
    recording.write_bytes(b"webm")
    now = dt.datetime.now(dt.UTC)
    await rooms.add_recording(api.server.app[POOL], consult_id, str(recording), now, now, 4)
    if complete:
        status, done = await api.call("POST", f"/api/consults/{consult_id}/complete", sp, json={"outcome": OUTCOME})
        assert status == 200, done
        hospital = await api.login("hospital")
        [request] = (await api.call("GET", "/api/referrals", hospital))[1]["referrals"]
        status, declined = await api.call("POST", f"/api/referrals/{request['id']}/decline", hospital, json={"reason": "ICU penuh"})
        assert status == 200, declined
    return consult_id, pk, body["attachment"]["id"]


async def _snapshot(con: asyncpg.Connection) -> dict[str, Any]:
    """Everything the sweep may change, to compare two runs."""
    return {
        "incidents": [dict(r) for r in await con.fetch("SELECT * FROM incidents ORDER BY id")],
        "consults": [dict(r) for r in await con.fetch("SELECT * FROM consults ORDER BY id")],
        "events": [dict(r) for r in await con.fetch("SELECT id, payload FROM events ORDER BY id")],
        "tracks": await con.fetchval("SELECT count(*) FROM unit_track"),
        "chat": await con.fetchval("SELECT count(*) FROM consult_chat"),
        "files": [dict(r) for r in await con.fetch("SELECT * FROM consult_attachments ORDER BY id")],
        "recordings": [dict(r) for r in await con.fetch("SELECT * FROM consult_recordings ORDER BY id")],
        "audit": await con.fetchval("SELECT count(*) FROM audit_log WHERE action <> 'retention.sweep'"),
    }


async def test_the_clock_moved_forward_deletes_and_pseudonymises_exactly_what_is_due(demo_dsn: str, tmp_path: Path) -> None:
    var_dir = tmp_path / "var"
    config = config_for(demo_dsn, var_dir)
    api = await start_api(demo_dsn, config)
    con = await db.connect(demo_dsn)
    try:
        operator, admin = await api.login("operator"), await api.login("admin")
        closed = await _incident(api, operator, CLOSED_PHONE, close=True)
        still_open = await _incident(api, operator, OPEN_PHONE, close=False)
        ended, pk, ended_file = await _consult_with_files(api, con, var_dir, complete=True)
        t0 = dt.datetime.now(dt.UTC)
        unit = await con.fetchval("SELECT id FROM units ORDER BY id LIMIT 1")
        await con.executemany("INSERT INTO unit_track (unit_id, at, lat, lon) VALUES ($1, $2, -6.27, 106.7)",
                              [(unit, t0), (unit, t0 + 20 * DAY)])
        status, metrics_before = await api.call("GET", "/api/metrics", operator)
        assert status == 200 and metrics_before["all"]["intervals"]["call_to_dispatch_s"]["count"] == 2
        ongoing, _, ongoing_file = await _consult_with_files(api, con, var_dir, complete=False)
        attachments = sorted(p for p in (var_dir / "attachments").rglob("*") if p.is_file())
        assert len(attachments) == 2

        # +100 days: only the GPS point older than 90 days goes.
        counts = await retention.sweep(con, config, t0 + 100 * DAY)
        assert counts == dict.fromkeys(retention.CLASSES, 0) | {"tracks": 1}
        assert await con.fetchval("SELECT count(*) FROM unit_track") == 1

        # +400 days: the ended consult's chat and recording go; the ongoing consult keeps both.
        counts = await retention.sweep(con, config, t0 + 400 * DAY)
        assert counts == dict.fromkeys(retention.CLASSES, 0) | {"tracks": 1, "chat": 1, "recordings": 1}
        assert await con.fetchval("SELECT count(*) FROM consult_chat WHERE consult_id = $1", uuid.UUID(ended)) == 0
        assert await con.fetchval("SELECT count(*) FROM consult_chat WHERE consult_id = $1", uuid.UUID(ongoing)) == 1
        assert not (var_dir / "recordings" / f"{ended}.webm").exists()
        assert (var_dir / "recordings" / f"{ongoing}.webm").exists()
        assert await con.fetchval("SELECT deleted_at FROM consult_recordings WHERE consult_id = $1", uuid.UUID(ended)) is not None

        # +1830 days: attachments, the audit log, the personal fields of the closed call and the ended consult.
        audit_before = await con.fetchval("SELECT count(*) FROM audit_log WHERE action <> 'retention.sweep'")
        carrying = await con.fetch("SELECT type FROM events WHERE payload->>'incident_id' = $1 AND payload ? 'incident' ORDER BY id", closed)
        assert [e["type"] for e in carrying] == ["call.received", "unit.dispatched"]
        far = t0 + 1830 * DAY
        counts = await retention.sweep(con, config, far)
        assert counts is not None
        assert (counts["attachments"], counts["incidents"], counts["consults"], counts["audit"]) == (1, 1, 1, audit_before)
        assert counts["incident_events"] == len(carrying)
        # A second run at the same instant changes nothing.
        before = await _snapshot(con)
        again = await retention.sweep(con, config, far)
        assert again is not None and set(again.values()) == {0}
        after = await _snapshot(con)
        assert after == before
        last = await retention.last_run(con)
        assert last is not None and last["counts"] == again and last["as_of"] == far
        # The sweep's own entries stay; everything else in the audit log was older than two years.
        sweeps = await con.fetch("SELECT detail FROM audit_log WHERE action = 'retention.sweep' ORDER BY id")
        assert [s["detail"]["counts"] for s in sweeps][-2:] == [counts, again] and len(sweeps) == 4
        assert sweeps[-2]["detail"]["as_of"] == far.isoformat() and sweeps[-2]["detail"]["days"]["tracks_days"] == 90
        assert await con.fetchval("SELECT count(*) FROM audit_log WHERE action <> 'retention.sweep'") == 0
        assert await con.fetchval("SELECT count(*) FROM retention_runs") == 4

        row = await con.fetchrow("SELECT * FROM incidents WHERE id = $1", uuid.UUID(closed))
        assert (row["caller_phone"], row["caller_name"], row["address"], row["complaint"], row["notes"]) == ("", None, "", "", "")
        assert row["request_digest"] == "" and (row["lat"], row["lon"]) == (-6.27, 106.71)
        assert row["kecamatan"] == "pondok-aren" and row["outcome"] == "emergency" and row["first_dispatched_at"] is not None
        assert await con.fetchval("SELECT count(*) FROM events WHERE payload::text LIKE $1", f"%{CLOSED_PHONE}%") == 0
        for personal in ("Pak Budi", "pagar hijau", "Ceger Raya", "nyeri dada"):
            assert await con.fetchval("SELECT count(*) FROM events WHERE strpos(payload::text, $1) > 0 AND payload->>'incident_id' = $2",
                                      personal, closed) == 0, personal
            assert await con.fetchval("SELECT count(*) FROM events WHERE strpos(payload::text, $1) > 0 AND payload->>'incident_id' = $2",
                                      personal, still_open) > 0, personal
        # The open call keeps everything, however old.
        kept = await con.fetchrow("SELECT * FROM incidents WHERE id = $1", uuid.UUID(still_open))
        assert (kept["caller_phone"], kept["caller_name"], kept["pseudonymised_at"]) == (OPEN_PHONE, "Pak Budi", None)
        assert await con.fetchval("SELECT count(*) FROM events WHERE payload::text LIKE $1", f"%{OPEN_PHONE}%") > 0

        patient = await con.fetchval("SELECT patient FROM consults WHERE id = $1", uuid.UUID(ended))
        assert patient == {"age": 50, "sex": "male", "chief_complaint": retention.REMOVED, "question": retention.REMOVED}
        outcome = await con.fetchval("SELECT outcome FROM consults WHERE id = $1", uuid.UUID(ended))
        assert outcome["decision"] == "refer" and set(outcome["soap"].values()) == {retention.REMOVED}
        assert outcome["referral"] == {**OUTCOME["referral"], "reason": retention.REMOVED}
        assert await con.fetchval("SELECT decline_reason FROM referrals WHERE consult_id = $1", uuid.UUID(ended)) == retention.REMOVED
        assert (await con.fetchval("SELECT patient FROM consults WHERE id = $1", uuid.UUID(ongoing)))["age"] == 58

        # Metrics unchanged; the old call's timeline and export still work, without the caller.
        status, metrics_after = await api.call("GET", "/api/metrics", operator)
        assert status == 200 and metrics_after == metrics_before
        status, timeline = await api.call("GET", f"/api/incidents/{closed}/timeline", operator)
        assert status == 200 and [e["type"] for e in timeline["timeline"]][0] == "call.received"
        status, eido = await api.call("GET", f"/api/incidents/{closed}/eido", operator)
        assert status == 200 and "personComponent" not in eido and CLOSED_PHONE not in str(eido)
        status, eido = await api.call("GET", f"/api/incidents/{still_open}/eido", operator)
        assert status == 200 and eido["personComponent"][0]["callBackNumber"] == OPEN_PHONE
        # The ended consult still opens; its deleted attachment is 410 with a reason, the ongoing one downloads.
        status, body = await api.call("GET", f"/api/consults/{ended}", pk)
        assert status == 200, body
        status, body = await api.call("GET", f"/api/consults/{ended}/attachments/{ended_file}", admin)
        assert status == 410 and "retention" in body["error"]["message"], body
        url = api.url(f"/api/consults/{ongoing}/attachments/{ongoing_file}")
        async with api.session.get(url, headers={"Authorization": f"Bearer {admin}"}) as r:
            assert r.status == 200 and await r.read() == PNG
        assert [p.exists() for p in attachments] == [p.parent.name == ongoing for p in attachments]
        assert sorted(p.name for p in (var_dir / "attachments").iterdir()) == [ongoing]  # no empty folder left

    finally:
        await con.close()
        await close_api(api)


async def test_one_process_sweeps_once_a_day(demo_dsn: str, tmp_path: Path) -> None:
    config = config_for(demo_dsn, tmp_path / "var", sweep_hour_utc=3)
    now = dt.datetime(2031, 5, 6, 10, 0, tzinfo=dt.UTC)
    cons = [await db.connect(demo_dsn) for _ in range(4)]
    try:
        results = await asyncio.gather(*(retention.sweep(c, config, now, only_if_due=True) for c in cons))
        assert sum(r is not None for r in results) == 1
        assert await cons[0].fetchval("SELECT count(*) FROM retention_runs") == 1
        assert await retention.sweep(cons[0], config, now + dt.timedelta(hours=5), only_if_due=True) is None
        assert retention.due_since(now, 3) == dt.datetime(2031, 5, 6, 3, 0, tzinfo=dt.UTC)
        assert retention.due_since(now, 11) == dt.datetime(2031, 5, 5, 11, 0, tzinfo=dt.UTC)
    finally:
        for c in cons:
            await c.close()


async def test_two_server_processes_run_the_daily_sweep_once(demo_dsn: str, tmp_path: Path) -> None:
    env = cli_env(demo_dsn) | {"PSC119_RETENTION_CHECK_S": "0.2", "PSC119_SERVER_VAR_DIR": str(tmp_path / "var")}
    servers = [await Served.start(["serve", "--port", "0"], env, tmp_path / f"serve{n}.log") for n in range(2)]
    con = await db.connect(demo_dsn)
    try:
        for _ in range(100):
            if await con.fetchval("SELECT count(*) FROM retention_runs"):
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # five more looks by each process: today's run is done
        assert await con.fetchval("SELECT count(*) FROM retention_runs") == 1
        assert await con.fetchval("SELECT count(*) FROM audit_log WHERE action = 'retention.sweep' AND username = 'system'") == 1
    finally:
        await con.close()
        for server in servers:
            await server.terminate()


async def test_batches_of_one_still_sweep_everything_due(demo_dsn: str, tmp_path: Path) -> None:
    config = config_for(demo_dsn, tmp_path / "var", batch=1)
    con = await db.connect(demo_dsn)
    try:
        unit = await con.fetchval("SELECT id FROM units ORDER BY id LIMIT 1")
        start = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
        await con.executemany("INSERT INTO unit_track (unit_id, at, lat, lon) VALUES ($1, $2, -6.27, 106.7)",
                              [(unit, start + n * dt.timedelta(minutes=1)) for n in range(7)])
        entries = await con.fetchval("SELECT count(*) FROM audit_log")
        counts = await retention.sweep(con, config, start + 3650 * DAY)
        assert counts is not None and (counts["tracks"], counts["audit"]) == (7, entries)
        assert await con.fetchval("SELECT count(*) FROM unit_track") == 0
    finally:
        await con.close()


async def test_the_audit_log_stays_append_only_outside_the_sweep(con: asyncpg.Connection) -> None:
    await audit.record(con, audit.CLI, "test.entry")
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await con.execute("DELETE FROM audit_log")
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        async with con.transaction():
            await con.execute("SET LOCAL psc119.retention = 'on'")
            await con.execute("UPDATE audit_log SET action = 'x'")


async def test_psc119_retention_run_with_a_moved_clock(demo_dsn: str, tmp_path: Path) -> None:
    con = await db.connect(demo_dsn)
    try:
        unit = await con.fetchval("SELECT id FROM units ORDER BY id LIMIT 1")
        await con.execute("INSERT INTO unit_track (unit_id, at, lat, lon) VALUES ($1, '2030-01-01T00:00Z', -6.27, 106.7)", unit)
        env = cli_env(demo_dsn) | {"PSC119_SERVER_VAR_DIR": str(tmp_path / "var")}
        done = await psc119("retention", "run", "--now", "2030-06-01T00:00:00+07:00", env=env)
        assert done.code == 0, done.err
        assert "tracks=1" in done.out.split()
        entry = await con.fetchrow("SELECT username, detail FROM audit_log WHERE action = 'retention.sweep'")
        assert entry["username"] == "cli" and entry["detail"]["counts"]["tracks"] == 1
        naive = await psc119("retention", "run", "--now", "2030-06-01T00:00:00", env=env)
        assert naive.code == 2 and "time zone" in naive.err
        assert await con.fetchval("SELECT count(*) FROM retention_runs") == 1
    finally:
        await con.close()


def test_personal_fields_outlive_the_prank_window(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[retention]\nincident_personal_days = 10\n")
    with pytest.raises(ConfigError, match="retention.incident_personal_days"):
        load_config(path, {})
    path.write_text("[retention]\nincident_personal_days = 0\naudit_days = -1\n")
    with pytest.raises(ConfigError, match="retention.audit_days"):
        load_config(path, {})
