"""The ``psc119`` command line: serve, migrate, backup, restore, retention run, user add/list/disable, peer."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime as dt
import getpass
import logging
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from aiohttp import web

from server import audit, backup, backup_runs, client_address, db, demo_region, gc_policy, migrate, peer_command, retention, users
from server.app import create_app
from server.config import Config, ConfigError, load_config
from server.connections import GuardedRunner
from server.embedded_db import EmbeddedDatabase
from server.errors import ApiError, InvalidField
from server.keys import FLEET, PASSWORDS, POOL
from server.logs import setup_logging
from server.passwords import Passwords
from server.roles import Role

log = logging.getLogger(__name__)

DEMO_BANNER = """
************************************************************************
*  DEMO DATABASE: demo users operator, field, puskesmas, specialist,   *
*  hospital, admin all have the password 'demo119'.                    *
*  Never use it for real calls.                                        *
************************************************************************"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="psc119", description="PSC 119 dispatch and telemedicine server")
    parser.add_argument("--config", type=Path, help="settings file (default: ./config.toml if present)")
    parser.add_argument("--log-format", choices=("text", "json"), help="overrides server.log_format")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the server")
    serve.add_argument("--demo", action="store_true", help="load the Tangerang Selatan demo region and users")
    serve.add_argument("--host", help="overrides server.host")
    serve.add_argument("--port", type=int, help="overrides server.port (0 picks a free port)")

    commands.add_parser("migrate", help="apply pending database migrations")

    backup_cmd = commands.add_parser("backup", help="write a backup archive of the database and its files")
    backup_cmd.add_argument("--to", type=Path, help="directory for the archive (default: backup.dir)")
    restore_cmd = commands.add_parser("restore", help="restore a backup archive into an empty database and var directory")
    restore_cmd.add_argument("file", type=Path)
    restore_cmd.add_argument("--force", action="store_true", help="replace a database or var directory that holds data")

    user = commands.add_parser("user", help="manage user accounts").add_subparsers(dest="user_command", required=True)
    add = user.add_parser("add", help="add a user; the password is read from a prompt or standard input")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=[r.value for r in Role])
    add.add_argument("--unit", help="unit id or callsign (field_team)")
    add.add_argument("--facility", help="facility code (puskesmas: a puskesmas; hospital: a hospital)")
    add.add_argument("--specialty", action="append", default=[], help="specialty code, repeatable (specialist)")
    add.add_argument("--display-name", default="")
    user.add_parser("list", help="list users")
    disable = user.add_parser("disable", help="disable a user and revoke their sessions")
    disable.add_argument("name")
    sweep = commands.add_parser("retention", help="apply the retention policy").add_subparsers(dest="retention_command", required=True)
    once = sweep.add_parser("run", help="run the retention sweep once now, whether or not today's has run")
    once.add_argument("--now", type=_instant, help="the instant taken for now, ISO 8601 with a zone (default: the clock)")
    peer_command.add_parser(commands)
    return parser


def _instant(text: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 instant: {text!r}") from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError("give a time zone, e.g. 2031-01-01T00:00:00+00:00")
    return value


def read_config(args: argparse.Namespace, environ: dict[str, str]) -> Config:
    path = args.config
    if path is None and Path("config.toml").is_file():
        path = Path("config.toml")
    config = load_config(path, environ)
    server = config.server
    overrides = {
        "log_format": args.log_format,
        "host": getattr(args, "host", None),
        "port": getattr(args, "port", None),
    }
    changed = {k: v for k, v in overrides.items() if v is not None}
    if changed:
        if "port" in changed and not 0 <= changed["port"] <= 65535:
            raise ConfigError("--port", "must be 0..65535")
        config = dataclasses.replace(config, server=dataclasses.replace(server, **changed))
    return config


@contextlib.contextmanager
def database(config: Config) -> Iterator[str]:
    """The DSN to use: the configured URL, or the embedded server, started here and stopped after."""
    if config.database.url:
        yield config.database.url
        return
    embedded = EmbeddedDatabase(Path(config.server.var_dir))
    embedded.start()
    try:
        dsn = embedded.dsn(config.database.embedded_dbname)
        asyncio.run(db.ensure_database(dsn))
        yield dsn
    finally:
        embedded.stop()


async def serve(config: Config, dsn: str, demo: bool) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    app = create_app(config, dsn)
    runner = GuardedRunner(
        app, config.limits, shutdown_timeout=config.server.shutdown_timeout_s,
        trusted_proxies=client_address.networks(config.server.trusted_proxies),
    )
    await runner.setup()
    try:
        if demo:
            async with app[POOL].acquire() as con:
                if await demo_region.load_demo(con, app[PASSWORDS]):
                    log.info("loaded the Tangerang Selatan demo region")
                    await app[FLEET].resync()  # the fleet index was built before the demo units existed
        if await demo_region.is_demo(app[POOL]):
            print(DEMO_BANNER, flush=True)
            log.warning("this is a DEMO database: demo users have the password 'demo119'")
        site = web.TCPSite(runner, config.server.host, config.server.port)
        await site.start()
        gc_policy.install(loop, lambda: runner.guard.sockets_closed)
        host, port = runner.addresses[0][:2]
        shown = f"[{host}]" if ":" in host else host
        print(f"psc119 serving on http://{shown}:{port}", flush=True)
        await stop.wait()
        log.info("shutting down")
    finally:
        await runner.cleanup()


async def run_migrate(dsn: str) -> None:
    con = await db.connect(dsn)
    try:
        names = await migrate.migrate(con)
    finally:
        await con.close()
    print("\n".join(f"applied {n}" for n in names) or "migrations are current")


async def run_backup(config: Config, dsn: str, to: Path | None) -> None:
    pool = await db.create_pool(dsn, dataclasses.replace(config.database, pool_min=1, pool_max=2))
    try:
        async with db.session_scoped(pool) as con:
            await migrate.migrate(con)
        run_id = await backup_runs.claim(pool, None)
        assert run_id is not None  # an unscheduled run is always claimed
        path, size = await backup_runs.perform(pool, dsn, config, run_id, to.resolve() if to else backup.directory(config))
    finally:
        await pool.close()
    print(f"backup written: {path} ({size} bytes)")


async def run_restore(config: Config, dsn: str, file: Path, force: bool) -> None:
    manifest = await backup.restore(dsn, config, file, force)
    con = await db.connect(dsn)
    try:
        await migrate.migrate(con)  # an archive from an older psc119 is brought up to date
    finally:
        await con.close()
    files = sum(1 for name in manifest["members"] if name.startswith(backup.VAR + "/"))
    print(f"restored {file}: made {manifest['created_at']}, schema version {manifest['schema_version']}, {files} files")


def read_password() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if getpass.getpass("Repeat password: ") != first:
            raise InvalidField("the passwords do not match", field="password")
        return first
    return sys.stdin.readline().rstrip("\r\n")


async def run_retention(config: Config, dsn: str, now: dt.datetime | None) -> None:
    con = await db.connect(dsn)
    try:
        await migrate.migrate(con)
        counts = await retention.sweep(con, config, now or dt.datetime.now(dt.UTC), audit.CLI)
    finally:
        await con.close()
    if counts is None:
        raise ApiError("another process is running the retention sweep; try again later")
    print(" ".join(f"{name}={count}" for name, count in counts.items()))


async def run_user(config: Config, dsn: str, args: argparse.Namespace) -> None:
    con = await db.connect(dsn)
    try:
        await migrate.migrate(con)
        if args.user_command == "add":
            user = await users.add_user(
                con, Passwords(config.auth), actor=audit.CLI, username=args.name, role=args.role,
                password=read_password(), min_password_length=config.auth.password_min_length,
                unit=args.unit, facility=args.facility, specialties=tuple(args.specialty),
                display_name=args.display_name,
            )
            print(f"added {user.username} ({user.role.value})")
        elif args.user_command == "list":
            for u in await users.list_users(con):
                binding = u.unit_id or u.facility_code or ",".join(u.specialties) or "-"
                print(f"{u.username:<20} {u.role.value:<11} {binding:<24} {'disabled' if u.disabled else 'active'}")
        else:
            user = await users.disable_user(con, actor=audit.CLI, username=args.name)
            print(f"disabled {user.username}; their sessions are revoked")
    finally:
        await con.close()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = read_config(args, dict(os.environ))
    except ConfigError as exc:
        print(f"psc119: {exc}", file=sys.stderr)
        return 2
    setup_logging(config.server.log_format, config.server.log_level, config.server.log_repeat_window_s)
    if args.command == "peer":  # a client: no database
        try:
            return asyncio.run(peer_command.run_peer(args, config))
        except (OSError, ValueError) as exc:
            print(f"psc119: {exc}", file=sys.stderr)
            return 1
    # Until the event loop takes over, SIGTERM unwinds like Ctrl-C, so the embedded database still stops.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        with database(config) as dsn:
            if args.command == "serve":
                asyncio.run(serve(config, dsn, args.demo))
            elif args.command == "migrate":
                asyncio.run(run_migrate(dsn))
            elif args.command == "retention":
                asyncio.run(run_retention(config, dsn, args.now))
            elif args.command == "backup":
                asyncio.run(run_backup(config, dsn, args.to))
            elif args.command == "restore":
                asyncio.run(run_restore(config, dsn, args.file, args.force))
            else:
                asyncio.run(run_user(config, dsn, args))
    except KeyboardInterrupt:
        return 130
    except ApiError as exc:
        where = f" ({exc.field})" if exc.field else ""
        print(f"psc119: {exc.message}{where}", file=sys.stderr)
        return 1
    except demo_region.DemoRefused as exc:
        print(f"psc119: {exc}", file=sys.stderr)
        return 1
    except (migrate.MigrationError, backup.BackupError, OSError) as exc:
        print(f"psc119: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
