"""Backups and restore: real pg_dump and pg_restore, real ``psc119 backup``/``restore`` processes,
archives checked member by member, and scheduled backups in the running server."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import io
import itertools
import json
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import asyncpg

from server import backup, backup_runs, db, rooms
from server.config import BackupSettings, Config, DatabaseSettings
from tests.conftest import Api, start_api
from tests.server.dispatch_support import Socket, call_body
from tests.server.process_support import cli_env, psc119
from tests.server.test_cli import serve_env
from tests.server.test_consult_files import JPEG, PDF, PNG, _post
from tests.server.test_consults import accepted_consult, close_api, consult_config

RECORDING = b"\x1a\x45\xdf\xa3" + bytes(range(256)) * 64  # a WebM (EBML) header and some bytes


def backup_env(dsn: str, var_dir: Path, **extra: str) -> dict[str, str]:
    return {**cli_env(dsn), "PSC119_SERVER_VAR_DIR": str(var_dir), **extra}


async def rows(dsn: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table but the backup history, in a stable order."""
    con = await db.connect(dsn)
    try:
        tables = [r["tablename"] for r in await con.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")]
        return {t: sorted(tuple(r.values()) for r in await con.fetch(f"SELECT * FROM {t}")) for t in tables if t != "backup_runs"}
    finally:
        await con.close()


async def record(api: Api, consult_id: str, var_dir: Path) -> Path:
    """A recording filed the way the recorder files one: the file under var/recordings, then its row."""
    path = var_dir.resolve() / "recordings" / f"{consult_id}-20261130T010203Z.webm"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(RECORDING)
    pool = await db.create_pool(api.dsn, DatabaseSettings(pool_min=1, pool_max=1))
    try:
        now = dt.datetime.now(dt.UTC)
        await rooms.add_recording(pool, consult_id, str(path), now - dt.timedelta(minutes=5), now, len(RECORDING))
    finally:
        await pool.close()
    return path


async def wipe(dsn: str, var_dir: Path) -> None:
    con = await asyncpg.connect(dsn)
    try:
        await con.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public AUTHORIZATION pg_database_owner")
    finally:
        await con.close()
    shutil.rmtree(var_dir)


async def test_back_up_wipe_restore_and_everything_is_served_again(demo_dsn: str, tmp_path: Path) -> None:
    var_dir = tmp_path / "var"
    api = await start_api(demo_dsn, consult_config(demo_dsn, var_dir))
    try:
        operator = await api.login("operator")
        incidents = []
        for n in range(3):
            status, body = await api.call("POST", "/api/calls", operator, json=call_body(address=f"Jl. Uji {n}"))
            assert status == 201, body
            incidents.append(body["incident"]["id"])
        consult_id, pk, _ = await accepted_consult(api)
        uploads = {}
        for data, kind, name in ((PNG, "image/png", "ekg.png"), (JPEG, "image/jpeg", "rontgen.jpg"), (PDF, "application/pdf", "lab.pdf")):
            status, body = await _post(api, consult_id, pk, data, kind, name)
            assert status == 201, body
            uploads[body["attachment"]["id"]] = data
        recording = await record(api, consult_id, var_dir)
    finally:
        await close_api(api)
    before = await rows(demo_dsn)

    made = await psc119("backup", "--to", str(tmp_path / "out"), env=backup_env(demo_dsn, var_dir))
    assert made.code == 0, made.err
    [archive] = list((tmp_path / "out").glob("psc119-*.tar"))
    assert f"backup written: {archive}" in made.out
    manifest = backup.verify(archive)
    assert manifest["schema_version"] == max(int(r[0]) for r in before["schema_migrations"])
    assert set(manifest["members"]) == {"database.dump", f"var/recordings/{recording.name}"} | {
        f"var/attachments/{consult_id}/{a}" for a in uploads
    }
    assert manifest["members"][f"var/recordings/{recording.name}"]["sha256"] == hashlib.sha256(RECORDING).hexdigest()

    await wipe(demo_dsn, var_dir)
    moved = tmp_path / "elsewhere" / "var"  # restored on another machine: another var directory
    restored = await psc119("restore", str(archive), env=backup_env(demo_dsn, moved))
    assert restored.code == 0, restored.err
    assert "4 files" in restored.out

    after = await rows(demo_dsn)
    new_recording = moved.resolve() / "recordings" / recording.name
    for table, content in before.items():
        if table != "consult_recordings":
            assert after[table] == content, table
    [rec_before], [rec_after] = before["consult_recordings"], after["consult_recordings"]
    assert rec_after == tuple(str(new_recording) if v == str(recording) else v for v in rec_before)
    assert new_recording.read_bytes() == RECORDING

    api = await start_api(demo_dsn, consult_config(demo_dsn, moved))
    try:
        operator, pk = await api.login("operator"), await api.login("puskesmas")
        for incident_id in incidents:
            status, body = await api.call("GET", f"/api/incidents/{incident_id}", operator)
            assert status == 200 and body["incident"]["id"] == incident_id, body
        for attachment_id, data in uploads.items():
            async with api.session.get(api.url(f"/api/consults/{consult_id}/attachments/{attachment_id}"),
                                       headers={"Authorization": f"Bearer {pk}"}) as r:
                assert r.status == 200 and await r.read() == data
        status, ready = await api.call("GET", "/readyz")
        assert status == 200 and ready["backup"] is None  # the backup history stays with the machine that made it
    finally:
        await close_api(api)


async def test_a_backup_taken_while_calls_are_created_restores_to_one_point_in_time(demo_dsn: str, bare_dsn: str, tmp_path: Path) -> None:
    var_dir = tmp_path / "var"
    api = await start_api(demo_dsn, consult_config(demo_dsn, var_dir))
    stop = asyncio.Event()

    async def calls(token: str) -> None:
        while not stop.is_set():
            status, body = await api.call("POST", "/api/calls", token, json=call_body())
            assert status == 201, body

    async def attachments(consult_id: str, token: str) -> None:
        while not stop.is_set():
            status, body = await _post(api, consult_id, token, PNG + bytes(8), "image/png", "ekg.png")
            assert status == 201, body

    try:
        operator = await api.login("operator")
        consult_id, pk, _ = await accepted_consult(api)
        writers = [asyncio.create_task(calls(operator)) for _ in range(3)]
        writers += [asyncio.create_task(attachments(consult_id, pk)) for _ in range(3)]
        await asyncio.sleep(0.3)
        con = await asyncpg.connect(demo_dsn)
        try:
            at_start = await con.fetchval("SELECT count(*) FROM incidents")
            made = await psc119("backup", "--to", str(tmp_path / "out"), env=backup_env(demo_dsn, var_dir))
            at_end = await con.fetchval("SELECT count(*) FROM incidents")
        finally:
            await con.close()
        stop.set()
        await asyncio.gather(*writers)
    finally:
        stop.set()
        await close_api(api)
    assert made.code == 0, made.err
    [archive] = list((tmp_path / "out").glob("psc119-*.tar"))

    target = tmp_path / "restored"
    restored = await psc119("restore", str(archive), env=backup_env(bare_dsn, target))
    assert restored.code == 0, restored.err
    live = await asyncpg.connect(demo_dsn)
    try:
        live_events = {r["id"]: tuple(r.values()) for r in await live.fetch("SELECT id, type, payload FROM events")}
    finally:
        await live.close()
    con = await asyncpg.connect(bare_dsn)
    try:
        incidents = await con.fetchval("SELECT count(*) FROM incidents")
        assert at_start < incidents < at_end  # the snapshot fell among the writes
        # Every event of the snapshot is the live one. Ids may commit out of order (migration 0015), so the
        # snapshot may lack an id below its newest: that id's transaction had not committed, and none of
        # its rows are in the snapshot either.
        restored_events = {r["id"]: tuple(r.values()) for r in await con.fetch("SELECT id, type, payload FROM events")}
        assert all(live_events[i] == e for i, e in restored_events.items())
        newest = max(restored_events)
        unseen = [e for i, e in live_events.items() if i < newest and i not in restored_events]
        unseen_calls = [json.loads(payload)["incident_id"] for _, kind, payload in unseen if kind == "call.received"]
        assert await con.fetchval("SELECT count(*) FROM incidents WHERE id::text = ANY($1::text[])", unseen_calls) == 0
        # Every call has its call.received event and every such event its call.
        assert await con.fetchval(
            """SELECT count(*) FROM incidents i FULL JOIN (SELECT payload->>'incident_id' AS id FROM events WHERE type = 'call.received') e
                 ON e.id = i.id::text WHERE i.id IS NULL OR e.id IS NULL"""
        ) == 0
        stored = await con.fetch("SELECT stored_path, sha256 FROM consult_attachments")
        added = await con.fetchval("SELECT count(*) FROM events WHERE type = 'consult.attachment_added'")
    finally:
        await con.close()
    # Exactly the files of the snapshot's rows are back, whole.
    assert len(stored) == added > 0
    on_disk = {str(p.relative_to(target / "attachments")) for p in (target / "attachments").rglob("*") if p.is_file()}
    assert on_disk == {r["stored_path"] for r in stored}
    for r in stored:
        assert hashlib.sha256((target / "attachments" / r["stored_path"]).read_bytes()).hexdigest() == r["sha256"]


async def test_the_embedded_database_is_backed_up_and_restored_with_its_own_binaries(tmp_path: Path) -> None:
    # The embedded server's own user must reach its data directory: tmp_path is one it is given access to.
    elsewhere = Path(tempfile.mkdtemp(prefix="psc119-test-restore-"))
    try:
        await embedded_round_trip(tmp_path, elsewhere)
    finally:
        shutil.rmtree(elsewhere, ignore_errors=True)


async def embedded_round_trip(first_dir: Path, second_dir: Path) -> None:
    first, second = serve_env(first_dir), serve_env(second_dir)
    added = await psc119("user", "add", "budi", "--role", "operator", env=first, stdin="budi-rahasia-119\n", timeout=60)
    assert added.code == 0, added.err
    made = await psc119("backup", env=first, timeout=60)
    assert made.code == 0, made.err
    [archive] = list((first_dir / "backups").glob("psc119-*.tar"))
    restored = await psc119("restore", str(archive), env=second, timeout=60)
    assert restored.code == 0, restored.err
    listed = await psc119("user", "list", env=second, timeout=60)
    assert listed.code == 0 and [line.split()[:2] for line in listed.out.splitlines()] == [["budi", "operator"]], listed
    again = await psc119("restore", str(archive), env=second, timeout=60)
    assert again.code == 1 and "the target is not empty" in again.err


def corrupt(archive: Path, member: str) -> None:
    """Flip one byte in the middle of a member's data, in place."""
    with tarfile.open(archive) as tar:
        info = tar.getmember(member)
    with open(archive, "r+b") as f:
        f.seek(info.offset_data + info.size // 2)
        byte = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([byte[0] ^ 0xFF]))


async def test_a_corrupted_archive_is_refused_before_anything_is_touched(demo_dsn: str, bare_dsn: str, tmp_path: Path) -> None:
    made = await psc119("backup", "--to", str(tmp_path / "out"), env=backup_env(demo_dsn, tmp_path / "var"))
    assert made.code == 0, made.err
    [archive] = list((tmp_path / "out").glob("psc119-*.tar"))
    corrupt(archive, "database.dump")
    target = tmp_path / "target"
    refused = await psc119("restore", str(archive), env=backup_env(bare_dsn, target))
    assert refused.code == 1
    assert "checksums do not match for database.dump" in refused.err and "nothing was restored" in refused.err
    con = await asyncpg.connect(bare_dsn)
    try:
        assert await con.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == 0
    finally:
        await con.close()
    assert not target.exists()


async def test_an_archive_from_a_newer_schema_is_refused(demo_dsn: str, bare_dsn: str, tmp_path: Path) -> None:
    made = await psc119("backup", "--to", str(tmp_path / "out"), env=backup_env(demo_dsn, tmp_path / "var"))
    assert made.code == 0, made.err
    [archive] = list((tmp_path / "out").glob("psc119-*.tar"))
    newer = tmp_path / "newer.tar"
    with tarfile.open(archive) as source, tarfile.open(newer, "w") as target:
        for info in source:
            data = source.extractfile(info).read()  # type: ignore[union-attr]
            if info.name == "manifest.json":
                data = json.dumps({**json.loads(data), "schema_version": 9999}).encode()
                info.size = len(data)
            target.addfile(info, io.BytesIO(data))
    refused = await psc119("restore", str(newer), env=backup_env(bare_dsn, tmp_path / "target"))
    assert refused.code == 1 and "schema version 9999 is newer than this psc119" in refused.err, refused.err


async def test_a_non_empty_target_is_refused_unless_forced(demo_dsn: str, tmp_path: Path) -> None:
    var_dir = tmp_path / "var"
    made = await psc119("backup", "--to", str(tmp_path / "out"), env=backup_env(demo_dsn, var_dir))
    assert made.code == 0, made.err
    [archive] = list((tmp_path / "out").glob("psc119-*.tar"))
    con = await asyncpg.connect(demo_dsn)
    try:
        await con.execute("UPDATE units SET callsign = callsign || '-later'")  # a change made after the backup
        refused = await psc119("restore", str(archive), env=backup_env(demo_dsn, var_dir))
        assert refused.code == 1 and "the target is not empty" in refused.err and "--force" in refused.err, refused.err
        assert await con.fetchval("SELECT count(*) FROM units WHERE callsign LIKE '%-later'") > 0
        stray = var_dir / "attachments" / "stray"
        stray.parent.mkdir(parents=True)
        stray.write_bytes(b"x")
        await con.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public AUTHORIZATION pg_database_owner")
        refused = await psc119("restore", str(archive), env=backup_env(demo_dsn, var_dir))
        assert refused.code == 1 and "files in" in refused.err, refused.err
        forced = await psc119("restore", "--force", str(archive), env=backup_env(demo_dsn, var_dir))
        assert forced.code == 0, forced.err
        assert await con.fetchval("SELECT count(*) FROM units WHERE callsign LIKE '%-later'") == 0
        assert await con.fetchval("SELECT count(*) FROM units") > 0
        assert not stray.exists()
    finally:
        await con.close()


def scheduled_config(dsn: str, var_dir: Path, **settings: Any) -> Config:
    return dataclasses.replace(consult_config(dsn, var_dir), backup=BackupSettings(**settings))


async def test_scheduled_backups_run_once_per_interval_across_processes_show_in_readyz_and_are_pruned(demo_dsn: str, tmp_path: Path) -> None:
    interval_h = 3 / 3600
    config = scheduled_config(demo_dsn, tmp_path / "var", interval_h=interval_h, keep=2)
    apis = [await start_api(demo_dsn, config), await start_api(demo_dsn, config)]  # two processes on one database
    try:
        status, ready = await apis[0].call("GET", "/readyz")
        assert status == 200 and ready == {"status": "ready", "backup": None}
        for _ in range(300):
            con = await asyncpg.connect(demo_dsn)
            try:
                runs = await con.fetch("SELECT started_at, ok, file FROM backup_runs WHERE scheduled ORDER BY id")
            finally:
                await con.close()
            if sum(1 for r in runs if r["ok"]) >= 4:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(f"scheduled backups did not run: {runs}")
        status, ready = await apis[1].call("GET", "/readyz")
    finally:
        for api in apis:
            await close_api(api)
    assert status == 200 and ready["status"] == "ready"
    assert 0 <= ready["backup"]["age_s"] < 10 and dt.datetime.fromisoformat(ready["backup"]["finished_at"])
    gaps = [(b["started_at"] - a["started_at"]).total_seconds() for a, b in itertools.pairwise(runs)]
    assert min(gaps) >= interval_h * 3600 - 0.01, gaps  # one run per interval, however many processes
    kept = sorted((tmp_path / "var" / "backups").glob("psc119-*.tar"))
    assert len(kept) == 2 and [str(p) for p in kept] == [r["file"] for r in runs if r["ok"]][-2:]
    for path in kept:
        backup.verify(path)


async def test_of_many_processes_claiming_at_once_exactly_one_takes_the_interval(demo_dsn: str) -> None:
    pools = [await db.create_pool(demo_dsn, DatabaseSettings(pool_min=1, pool_max=1)) for _ in range(8)]
    try:
        for _ in range(3):
            await asyncio.gather(*(p.execute("SELECT 1") for p in pools))  # every connection open and warm
            claimed = await asyncio.gather(*(backup_runs.claim(p, 3600.0) for p in pools))
            assert len([c for c in claimed if c is not None]) == 1, claimed
            claimed = await asyncio.gather(*(backup_runs.claim(p, 3600.0) for p in pools))
            assert claimed == [None] * len(pools)  # the interval is taken
            await pools[0].execute("DELETE FROM backup_runs")
    finally:
        for p in pools:
            await p.close()


async def test_a_failing_backup_is_recorded_and_alerts_the_admins(demo_dsn: str, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_bytes(b"")
    config = scheduled_config(demo_dsn, tmp_path / "var", interval_h=1 / 3600, dir=str(blocker / "backups"))
    api = await start_api(demo_dsn, config)
    try:
        admin = await Socket.open(api, "/ws/events", await api.login("admin"))
        alert = await admin.event("alert", timeout=20, alert="backup_failed")
        assert "not-a-directory" in alert["data"]["error"]
        status, ready = await api.call("GET", "/readyz")
        assert status == 200 and ready == {"status": "ready", "backup": None}  # informational: still ready
        await admin.close()
    finally:
        await close_api(api)
    con = await asyncpg.connect(demo_dsn)
    try:
        run = await con.fetchrow("SELECT ok, file, error, finished_at FROM backup_runs WHERE id = $1", alert["data"]["run"])
    finally:
        await con.close()
    assert run["ok"] is False and run["file"] is None and run["finished_at"] is not None
    assert json.dumps(run["error"]) and "not-a-directory" in run["error"]


def test_the_database_password_goes_to_pg_dump_in_its_environment_never_on_its_command_line() -> None:
    dsn, env = backup._libpq("postgresql://psc119:s3cret%40x@db.internal:5433/psc119?sslmode=require")
    assert dsn == "postgresql://psc119@db.internal:5433/psc119?sslmode=require"
    assert env["PGPASSWORD"] == "s3cret@x"
    dsn, env = backup._libpq("postgresql://postgres@/psc119?host=/run/pg&password=other")
    assert dsn == "postgresql://postgres@/psc119?host=/run/pg" and env["PGPASSWORD"] == "other"
