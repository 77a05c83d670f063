"""Login, sessions, logout, rate limiting and their audit trail, against the real app and database."""

from __future__ import annotations

import asyncpg

from tests.conftest import Api, app_config, start_api


async def test_login_returns_token_that_authenticates(api: Api) -> None:
    status, body = await api.call("POST", "/api/auth/login", json={"username": "operator", "password": "demo119"})
    assert status == 200
    assert body["user"]["role"] == "operator"
    status, me = await api.call("GET", "/api/me", body["token"])
    assert status == 200
    assert me["username"] == "operator"


async def test_username_is_case_insensitive_at_login(api: Api) -> None:
    status, _ = await api.call("POST", "/api/auth/login", json={"username": "Operator", "password": "demo119"})
    assert status == 200


async def test_wrong_password_and_unknown_user_get_the_same_401(api: Api) -> None:
    s1, b1 = await api.call("POST", "/api/auth/login", json={"username": "operator", "password": "wrong"})
    s2, b2 = await api.call("POST", "/api/auth/login", json={"username": "nobody", "password": "wrong"})
    assert (s1, s2) == (401, 401)
    assert b1["error"]["message"] == b2["error"]["message"]


async def test_token_is_stored_hashed_and_password_with_argon2(api: Api, con: asyncpg.Connection) -> None:
    token = await api.login("admin")
    stored = await con.fetch("SELECT token_hash FROM sessions")
    assert stored and all(token.encode() not in bytes(r["token_hash"]) for r in stored)
    password_hash = await con.fetchval("SELECT password_hash FROM users WHERE username = 'admin'")
    assert password_hash.startswith("$argon2id$")


async def test_no_token_or_garbage_token_is_401(api: Api) -> None:
    assert (await api.call("GET", "/api/me"))[0] == 401
    assert (await api.call("GET", "/api/me", "not-a-token"))[0] == 401
    async with api.session.get(api.url("/api/me"), headers={"Authorization": "Basic abc"}) as r:
        assert r.status == 401
        assert r.headers["WWW-Authenticate"] == "Bearer"


async def test_logout_revokes_only_that_token(api: Api) -> None:
    first = await api.login("operator")
    second = await api.login("operator")
    assert (await api.call("POST", "/api/auth/logout", first))[0] == 200
    assert (await api.call("GET", "/api/me", first))[0] == 401
    assert (await api.call("GET", "/api/me", second))[0] == 200


async def test_expired_session_is_refused(api: Api, con: asyncpg.Connection) -> None:
    token = await api.login("operator")
    await con.execute("UPDATE sessions SET expires_at = now() - interval '1 second'")
    assert (await api.call("GET", "/api/me", token))[0] == 401


async def test_disabling_a_user_ends_their_sessions_and_logins(api: Api, con: asyncpg.Connection) -> None:
    from server import audit, users

    token = await api.login("puskesmas")
    await users.disable_user(con, actor=audit.CLI, username="puskesmas")
    assert (await api.call("GET", "/api/me", token))[0] == 401
    status, _ = await api.call("POST", "/api/auth/login", json={"username": "puskesmas", "password": "demo119"})
    assert status == 401


async def test_sessions_expire_after_configured_ttl(demo_dsn: str, con: asyncpg.Connection) -> None:
    client = await start_api(demo_dsn, app_config(demo_dsn, session_ttl_h=1.0))
    try:
        await client.login("operator")
        seconds = await con.fetchval("SELECT extract(epoch FROM expires_at - created_at) FROM sessions")
        assert 3590 <= seconds <= 3610
    finally:
        await client.session.close()
        await client.server.close()


async def test_repeated_failures_refuse_that_account_from_that_address_only(demo_dsn: str, con: asyncpg.Connection) -> None:
    client = await start_api(demo_dsn, app_config(demo_dsn, login_max_failures=3))
    try:
        for _ in range(3):
            status, _ = await client.call("POST", "/api/auth/login", json={"username": "operator", "password": "bad"})
            assert status == 401
        async with client.session.post(client.url("/api/auth/login"), json={"username": "operator", "password": "demo119"}) as r:
            assert r.status == 429
            body = await r.json()
            assert body["error"]["code"] == "rate_limited"
            assert 1 <= int(r.headers["Retry-After"]) <= 900
            assert body["retry_after_s"] == int(r.headers["Retry-After"])
        # Another user behind the same address (one puskesmas NAT) is not held back.
        status, _ = await client.call("POST", "/api/auth/login", json={"username": "admin", "password": "demo119"})
        assert status == 200
        actions = [r["action"] for r in await con.fetch("SELECT action FROM audit_log WHERE action LIKE 'auth.%' ORDER BY id")]
        assert actions == ["auth.login_failed"] * 3 + ["auth.login_blocked", "auth.login"]
    finally:
        await client.session.close()
        await client.server.close()


async def test_failures_outside_the_window_do_not_count(demo_dsn: str, con: asyncpg.Connection) -> None:
    client = await start_api(demo_dsn, app_config(demo_dsn, login_max_failures=2, login_window_s=60))
    try:
        for _ in range(2):
            await client.call("POST", "/api/auth/login", json={"username": "operator", "password": "bad"})
        status, _ = await client.call("POST", "/api/auth/login", json={"username": "operator", "password": "demo119"})
        assert status == 429
        await con.execute("UPDATE login_counters SET window_start = window_start - interval '61 seconds'")
        status, _ = await client.call("POST", "/api/auth/login", json={"username": "operator", "password": "demo119"})
        assert status == 200
    finally:
        await client.session.close()
        await client.server.close()


async def test_login_logout_and_failures_are_audited(api: Api, con: asyncpg.Connection) -> None:
    await api.call("POST", "/api/auth/login", json={"username": "operator", "password": "nope"})
    token = await api.login("operator")
    await api.call("POST", "/api/auth/logout", token)
    rows = await con.fetch("SELECT action, username, object, address FROM audit_log WHERE action LIKE 'auth.%' ORDER BY id")
    assert [(r["action"], r["username"]) for r in rows] == [
        ("auth.login_failed", "operator"),
        ("auth.login", "operator"),
        ("auth.logout", "operator"),
    ]
    assert all(r["address"] == "127.0.0.1" for r in rows)


async def test_audit_log_is_append_only(con: asyncpg.Connection) -> None:
    await con.execute("INSERT INTO audit_log (username, action) VALUES ('x', 'test')")
    for statement in ("UPDATE audit_log SET action = 'y'", "DELETE FROM audit_log", "TRUNCATE audit_log"):
        try:
            await con.execute(statement)
        except asyncpg.RaiseError as exc:
            assert "append-only" in str(exc)
        else:
            raise AssertionError(f"{statement} was allowed")
