"""Benchmark: a backup and a restore against plain pg_dump and pg_restore of the same database.

Starts an embedded PostgreSQL under a temporary directory, loads the demo region,
records ``--calls`` calls and ``--files`` consult attachments of ``--size`` bytes
through the real app, then measures in the same run:

1. baseline: ``pg_dump --format=custom`` of the database alone, and ``pg_restore`` of it;
2. ``server.backup.create`` (snapshot, dump, the files, checksums, one tar) and
   ``server.backup.restore`` (every checksum checked, then restored) into a fresh
   database and var directory.

It prints the times, sizes and the ratios backup/pg_dump and restore/pg_restore,
and asserts only that the restored database holds what was written, never a time.

    python bench/bench_backup.py [--calls 500] [--files 200] [--size 200000]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer
from results import Row, emit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from server import backup, db, demo_region, migrate  # noqa: E402
from server.app import create_app  # noqa: E402
from server.config import AuthSettings, BackupSettings, Config, DatabaseSettings, ServerSettings  # noqa: E402
from server.embedded_db import EmbeddedDatabase  # noqa: E402
from server.passwords import Passwords  # noqa: E402

AUTH = AuthSettings(argon2_time_cost=1, argon2_memory_kib=8192)
PATIENT = {"age": 58, "sex": "male", "chief_complaint": "nyeri dada", "question": "STEMI?"}


async def fill(config: Config, dsn: str, calls: int, files: int, size: int) -> None:
    server = TestServer(create_app(config, dsn), host="127.0.0.1", port=0)
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:

            async def login(name: str) -> dict[str, str]:
                async with session.post(server.make_url("/api/auth/login"), json={"username": name, "password": demo_region.DEMO_PASSWORD}) as r:
                    return {"Authorization": f"Bearer {(await r.json())['token']}"}

            operator, pk = await login("operator"), await login("puskesmas")
            for n in range(calls):
                body = {"idempotency_key": str(uuid.uuid4()), "phone": f"0812{n:08d}", "location": {"lat": -6.2695, "lon": 106.7070},
                        "address": f"Jl. Bench {n}", "call_type": "chest_pain", "complaint": "nyeri dada"}
                async with session.post(server.make_url("/api/calls"), json=body, headers=operator) as r:
                    assert r.status == 201, await r.text()
            request = {"idempotency_key": uuid.uuid4().hex, "service": "tele_ekg", "specialty": "jantung", "urgency": "routine", "patient": PATIENT}
            async with session.post(server.make_url("/api/consults"), json=request, headers=pk) as r:
                assert r.status == 201, await r.text()
                consult_id = (await r.json())["consult"]["id"]
            data = b"%PDF-1.4\n" + bytes(size - 9)
            for n in range(files):
                async with session.post(server.make_url(f"/api/consults/{consult_id}/attachments"), params={"filename": f"f{n}.pdf"},
                                        data=data, headers={**pk, "Content-Type": "application/pdf"}) as r:
                    assert r.status == 201, await r.text()
    finally:
        await server.close()


async def timed(coro: object) -> float:
    start = time.perf_counter()
    await coro  # type: ignore[misc]
    return time.perf_counter() - start


async def main(args: argparse.Namespace) -> None:
    root = Path(tempfile.mkdtemp(prefix="psc119-bench-backup-"))
    embedded = EmbeddedDatabase(root)
    await asyncio.to_thread(embedded.start)
    try:
        admin = embedded.dsn("postgres")
        source, target, plain = (admin.replace("/postgres?", f"/{name}?") for name in ("bench_src", "bench_dst", "bench_plain"))
        con = await db.connect(admin)
        for name in ("bench_src", "bench_dst", "bench_plain"):
            await con.execute(f"CREATE DATABASE {name}")
        await con.close()
        con = await db.connect(source)
        await migrate.migrate(con)
        await demo_region.load_demo(con, Passwords(AUTH))
        await con.close()
        base = Config(database=DatabaseSettings(url=source, pool_min=1, pool_max=4), auth=AUTH,
                      server=ServerSettings(var_dir=str(root / "var")), backup=BackupSettings(interval_h=0))
        config = dataclasses.replace(base, consult=dataclasses.replace(base.consult, attachment_max_bytes=max(args.size, 1)))
        await fill(config, source, args.calls, args.files, args.size)

        dump = root / "plain.dump"
        libpq_src, env = backup._libpq(source)  # the same client the backup uses
        pg_dump_s = await timed(backup._run([backup.pg_tool(config, "pg_dump"), "--format=custom", "--file", str(dump), "--dbname", libpq_src], env))
        libpq_plain, _ = backup._libpq(plain)
        pg_restore_s = await timed(backup._run(
            [backup.pg_tool(config, "pg_restore"), "--no-owner", "--single-transaction", "--dbname", libpq_plain, str(dump)], env))

        start = time.perf_counter()
        archive, archive_bytes = await backup.create(source, config, root / "out")
        backup_s = time.perf_counter() - start
        restored = dataclasses.replace(config, server=ServerSettings(var_dir=str(root / "restored")))
        start = time.perf_counter()
        await backup.restore(target, restored, archive, force=False)
        restore_s = time.perf_counter() - start

        con = await db.connect(target)
        counts = (await con.fetchval("SELECT count(*) FROM incidents"), await con.fetchval("SELECT count(*) FROM consult_attachments"))
        await con.close()
        assert counts == (args.calls, args.files), counts
        files = sum(1 for p in (root / "restored" / "attachments").rglob("*") if p.is_file())
        assert files == args.files, files

        mb = archive_bytes / 1e6
        print(f"data: {args.calls} calls, {args.files} files of {args.size} bytes; "
              f"pg_dump file {dump.stat().st_size / 1e6:.1f} MB, archive {mb:.1f} MB")
        print(f"pg_dump     {pg_dump_s * 1000:8.0f} ms   backup  {backup_s * 1000:8.0f} ms   "
              f"ratio {backup_s / pg_dump_s:5.2f}   ({mb / backup_s:.0f} MB/s)")
        print(f"pg_restore  {pg_restore_s * 1000:8.0f} ms   restore {restore_s * 1000:8.0f} ms   "
              f"ratio {restore_s / pg_restore_s:5.2f}   ({mb / restore_s:.0f} MB/s)")
        size = f"{args.calls} calls, {args.files} files of {args.size} B"
        emit(Row(f"backup ({size})", backup_s * 1000, pg_dump_s * 1000, "pg_dump of the database alone", "ms"),
             Row(f"restore ({size})", restore_s * 1000, pg_restore_s * 1000, "pg_restore of it", "ms"))
    finally:
        await asyncio.to_thread(embedded.stop)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--size", type=int, default=200_000)
    asyncio.run(main(parser.parse_args()))
