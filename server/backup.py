"""Backup archives: the database and the files under ``var/`` that it refers to, as one tar.

An archive ``psc119-<UTC time>.tar`` holds ``database.dump`` (``pg_dump --format=custom``),
``var/attachments/...`` and ``var/recordings/...``, and last ``manifest.json``: when it
was made, the schema version (the last applied migration), the psc119 version, the var
directory it came from, and the sha256 and size of every other member.

Consistency: a REPEATABLE READ transaction exports its snapshot and stays open while
``pg_dump --snapshot`` dumps exactly that snapshot, and the list of files is read in
the same snapshot. Attachment and recording files are complete on disk before the row
that names them commits, so every file a dumped row names exists. The archive is
written under a temporary name and renamed when complete.

Restore verifies every checksum before it touches anything, refuses a database or a
var directory that already holds data unless forced, restores the database in one
transaction, then puts the files back.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import importlib.metadata
import io
import json
import logging
import os
import shutil
import tarfile
import tempfile
from pathlib import Path, PurePosixPath
from typing import IO, Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import asyncpg

from server import db, migrate
from server.config import Config
from server.embedded_db import BIN_DIR

log = logging.getLogger(__name__)

DUMP = "database.dump"
MANIFEST = "manifest.json"
VAR = "var"
FORMAT = 1
# The var subdirectories that hold the files rows refer to; restore puts them back here.
FILE_DIRS = ("attachments", "recordings")
PREFIX, SUFFIX = "psc119-", ".tar"
# The history of backups belongs to the machine that made them, not to the data.
NOT_DUMPED = "backup_runs"
CHUNK = 1 << 20


class BackupError(Exception):
    """A backup or restore that cannot be done; the message says why."""


def directory(config: Config) -> Path:
    """Where backups go: ``backup.dir``, a relative one under ``server.var_dir``."""
    return (Path(config.server.var_dir) / config.backup.dir).resolve()


def pg_tool(config: Config, name: str) -> str:
    """``pg_dump`` or ``pg_restore``: from ``backup.pg_bin_dir``, else those the embedded PostgreSQL ships, else PATH."""
    for folder in (config.backup.pg_bin_dir, str(BIN_DIR)):
        if folder and (Path(folder) / name).is_file():
            return str(Path(folder) / name)
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} not found (set backup.pg_bin_dir)")
    return found


def _libpq(dsn: str) -> tuple[str, dict[str, str]]:
    """The DSN without its password, and the environment that carries it (never on a command line)."""
    parts = urlsplit(dsn)
    env = dict(os.environ)  # PG* settings (PGSSLMODE, ...) reach pg_dump as they reach asyncpg
    query = dict(parse_qsl(parts.query))
    in_query = query.pop("password", None)
    password = unquote(parts.password) if parts.password else in_query
    if password:
        env["PGPASSWORD"] = password
    netloc = parts.hostname or ""
    if ":" in netloc:
        netloc = f"[{netloc}]"
    if parts.port:
        netloc += f":{parts.port}"
    if parts.username:
        netloc = f"{parts.username}@{netloc}"
    return urlunsplit(parts._replace(netloc=netloc, query=urlencode(query, safe="/"))), env


async def _run(command: list[str], env: dict[str, str]) -> None:
    proc = await asyncio.create_subprocess_exec(
        *command, env=env, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    try:
        _, err = await proc.communicate()
    finally:
        if proc.returncode is None:  # cancelled: a dump must not outlive its snapshot
            proc.kill()
            await proc.wait()
    if proc.returncode != 0:
        name = Path(command[0]).name
        raise BackupError(f"{name} failed ({proc.returncode}): {err.decode(errors='replace').strip()[-500:]}")


def _version() -> str:
    try:
        return importlib.metadata.version("psc119")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _var_member(var_dir: Path, path: Path) -> str | None:
    """The archive name of a file under the var directory, or None for one outside it."""
    resolved = path.resolve()
    if not resolved.is_relative_to(var_dir):
        return None
    return str(PurePosixPath(VAR, *resolved.relative_to(var_dir).parts))


async def _referenced_files(con: asyncpg.Connection, var_dir: Path) -> dict[str, Path]:
    """Archive name → file, for every attachment and recording the snapshot's rows name."""
    files: dict[str, Path] = {}
    paths = [var_dir / "attachments" / r["stored_path"] for r in await con.fetch("SELECT stored_path FROM consult_attachments")]
    paths += [Path(r["path"]) for r in await con.fetch("SELECT path FROM consult_recordings")]
    for path in paths:
        member = _var_member(var_dir, path)
        if member is None:
            log.warning("backup: a file outside the var directory is not archived: %s", path)
        else:
            files[member] = path
    return files


class _Hashing(io.RawIOBase):
    """A file read through, hashed as it goes."""

    def __init__(self, f: IO[bytes]) -> None:
        self._f = f
        self.sha256 = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._f.read(size)
        self.sha256.update(data)
        return data


def _write_archive(target: Path, dump: Path, files: dict[str, Path], head: dict[str, Any]) -> int:
    """Write the tar under a temporary name, then rename it; return its size."""
    partial = target.with_name(f".{target.name}.part")
    members: dict[str, dict[str, Any]] = {}
    missing: list[str] = []
    try:
        with open(partial, "wb") as raw:
            with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
                for name, path in [(DUMP, dump), *sorted(files.items())]:
                    try:
                        f = open(path, "rb")
                    except FileNotFoundError:
                        missing.append(name)  # deleted since its row was read; the row is in the dump
                        continue
                    with f:
                        info = tar.gettarinfo(fileobj=f, arcname=name)
                        info.uid = info.gid = 0
                        info.uname = info.gname = ""
                        hashing = _Hashing(f)
                        tar.addfile(info, hashing)
                        members[name] = {"sha256": hashing.sha256.hexdigest(), "bytes": info.size}
                manifest = json.dumps({**head, "members": members, "missing": missing}, indent=1).encode()
                info = tarfile.TarInfo(MANIFEST)
                info.size, info.mtime = len(manifest), int(dt.datetime.now(dt.UTC).timestamp())
                tar.addfile(info, io.BytesIO(manifest))
            raw.flush()
            os.fsync(raw.fileno())
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    if missing:
        log.warning("backup: %d referenced files were gone when archived", len(missing))
    return target.stat().st_size


async def create(dsn: str, config: Config, into: Path) -> tuple[Path, int]:
    """Make one archive in ``into``; return its path and size."""
    var_dir = Path(config.server.var_dir).resolve()
    into.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    target = into / f"{PREFIX}{now.strftime('%Y%m%dT%H%M%S_%fZ')}{SUFFIX}"
    libpq_dsn, env = _libpq(dsn)
    with tempfile.TemporaryDirectory(prefix=".psc119-backup-", dir=into) as work:
        dump = Path(work) / DUMP
        con = await db.connect(dsn)
        try:
            async with con.transaction(isolation="repeatable_read", readonly=True):
                snapshot = await con.fetchval("SELECT pg_export_snapshot()")
                schema_version = await con.fetchval("SELECT coalesce(max(version), 0) FROM schema_migrations")
                files = await _referenced_files(con, var_dir)
                await _run([
                    pg_tool(config, "pg_dump"), "--format=custom", f"--snapshot={snapshot}",
                    f"--exclude-table-data={NOT_DUMPED}", "--file", str(dump), "--dbname", libpq_dsn,
                ], env)  # fmt: skip
        finally:
            await con.close()
        head = {
            "format": FORMAT, "created_at": now.isoformat(), "schema_version": schema_version,
            "psc119_version": _version(), "var_dir": str(var_dir),
        }  # fmt: skip
        size = await asyncio.to_thread(_write_archive, target, dump, files, head)
    log.info("backup written: %s (%d bytes, %d files)", target, size, len(files))
    return target, size


def prune(into: Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` archives in ``into``; return those deleted."""
    archives = sorted(p for p in into.glob(f"{PREFIX}*{SUFFIX}") if p.is_file())
    gone = archives[:-keep] if len(archives) > keep else []
    for path in gone:
        path.unlink(missing_ok=True)
    return gone


# --- reading an archive ---------------------------------------------------------------------------


def _safe_member(info: tarfile.TarInfo) -> str:
    name = PurePosixPath(info.name)
    if not info.isreg() or name.is_absolute() or ".." in name.parts or str(name) != info.name:
        raise BackupError(f"the archive holds an unexpected member {info.name!r}")
    if info.name not in (DUMP, MANIFEST) and not (len(name.parts) >= 3 and name.parts[0] == VAR and name.parts[1] in FILE_DIRS):
        raise BackupError(f"the archive holds an unexpected member {info.name!r}")
    return info.name


def _walk(archive: Path, out: Path | None) -> dict[str, Any]:
    """Read every member, hashing it (and writing it under ``out``); return the manifest, checked."""
    seen: dict[str, dict[str, Any]] = {}
    manifest: dict[str, Any] | None = None
    try:
        with tarfile.open(archive, mode="r:") as tar:
            for info in tar:
                name = _safe_member(info)
                if name in seen or (manifest is not None):
                    raise BackupError(f"the archive is malformed at {name!r}")
                source = tar.extractfile(info)
                assert source is not None  # a regular member
                if name == MANIFEST:
                    manifest = json.loads(source.read())
                    continue
                digest = hashlib.sha256()
                with contextlib.ExitStack() as stack:
                    sink = None
                    if out is not None:
                        (out / name).parent.mkdir(parents=True, exist_ok=True)
                        sink = stack.enter_context(open(out / name, "wb"))
                    while chunk := source.read(CHUNK):
                        digest.update(chunk)
                        if sink is not None:
                            sink.write(chunk)
                seen[name] = {"sha256": digest.hexdigest(), "bytes": info.size}
    except (tarfile.TarError, EOFError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BackupError(f"{archive} is not a readable psc119 backup ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or not isinstance(manifest.get("members"), dict):
        raise BackupError(f"{archive} has no valid manifest")
    expected = manifest["members"]
    wrong = sorted(n for n in set(expected) | set(seen) if expected.get(n) != seen.get(n))
    if wrong or DUMP not in seen:
        raise BackupError(f"{archive}: checksums do not match for {', '.join(wrong[:5]) or DUMP}; nothing was restored")
    return manifest


def verify(archive: Path) -> dict[str, Any]:
    """The manifest of an archive whose every member matches its checksum; BackupError otherwise."""
    return _walk(archive, None)


# --- restore --------------------------------------------------------------------------------------


def _files_present(var_dir: Path) -> list[str]:
    return [d for d in FILE_DIRS if (var_dir / d).is_dir() and any(p.is_file() for p in (var_dir / d).rglob("*"))]


async def _tables(con: asyncpg.Connection) -> int:
    return int(await con.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"))


def _put_back(unpacked: Path, var_dir: Path) -> int:
    count = 0
    for path in sorted((unpacked / VAR).rglob("*")) if (unpacked / VAR).is_dir() else []:
        if path.is_file():
            target = var_dir / path.relative_to(unpacked / VAR)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(path, target)
            count += 1
    return count


async def restore(dsn: str, config: Config, archive: Path, force: bool) -> dict[str, Any]:
    """Restore ``archive`` into the database of ``dsn`` and ``server.var_dir``; return its manifest."""
    manifest = await asyncio.to_thread(verify, archive)
    latest = migrate.available()[-1].version
    if not isinstance(manifest.get("schema_version"), int) or manifest["schema_version"] > latest:
        raise BackupError(f"the archive's schema version {manifest.get('schema_version')} is newer than this psc119 ({latest})")
    var_dir = Path(config.server.var_dir).resolve()
    con = await db.connect(dsn)
    try:
        tables = await _tables(con)
        present = _files_present(var_dir)
        if (tables or present) and not force:
            held = ([f"{tables} tables in the database"] if tables else []) + [f"files in {var_dir / d}" for d in present]
            raise BackupError(f"the target is not empty ({'; '.join(held)}); restore --force replaces it")
        var_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".psc119-restore-", dir=var_dir) as work:
            unpacked = Path(work)
            if await asyncio.to_thread(_walk, archive, unpacked) != manifest:
                raise BackupError(f"{archive} changed while it was being restored")
            if tables:
                await con.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public AUTHORIZATION pg_database_owner")
            libpq_dsn, env = _libpq(dsn)
            await _run([
                pg_tool(config, "pg_restore"), "--no-owner", "--no-privileges", "--single-transaction",
                "--exit-on-error", "--dbname", libpq_dsn, str(unpacked / DUMP),
            ], env)  # fmt: skip
            if force:
                for d in present:
                    await asyncio.to_thread(shutil.rmtree, var_dir / d)
            restored = await asyncio.to_thread(_put_back, unpacked, var_dir)
        old = str(manifest.get("var_dir", ""))
        if old and old != str(var_dir):
            # Recordings are named by absolute path: point them at the files where they now are.
            await con.execute(
                "UPDATE consult_recordings SET path = $2 || substr(path, length($1) + 1) WHERE starts_with(path, $1 || '/')",
                old, str(var_dir),
            )
    finally:
        await con.close()
    log.info("restored %s: schema version %s, %d files", archive, manifest["schema_version"], restored)
    return manifest
