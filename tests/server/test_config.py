"""Settings: config.toml mirrors the dataclass defaults; overrides apply; every mistake names its key."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import tomllib
from pathlib import Path

import pytest

from server.config import Config, ConfigError, DatabaseSettings, _from_text, load_config
from tests.conftest import PSC119, REPO

CONFIG_TOML = REPO / "config.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_config_toml_lists_exactly_the_dataclass_defaults() -> None:
    with open(CONFIG_TOML, "rb") as f:
        file = tomllib.load(f)
    defaults = Config()
    sections = {f.name for f in dataclasses.fields(Config)}
    assert set(file) == sections
    for section in sections:
        settings = getattr(defaults, section)
        expected = {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)}
        written = file[section]
        assert set(written) == set(expected), section
        for key, value in expected.items():
            # A TOML list is a tuple of strings in the dataclass.
            in_file = tuple(written[key]) if isinstance(written[key], list) else written[key]
            # The type matters too: 8 in the file where the code says 8.0 would hide an int/float mix-up.
            assert (type(in_file), in_file) == (type(value), value), f"{section}.{key}"


def test_loading_config_toml_gives_the_defaults() -> None:
    assert load_config(CONFIG_TOML, {}) == Config()
    assert load_config(None, {}) == Config()


def test_file_values_are_read(tmp_path: Path) -> None:
    path = write(tmp_path, '[server]\nport = 9000\nshutdown_timeout_s = 5\n[database]\nurl = "postgresql://x/y"\n')
    config = load_config(path, {})
    assert config.server.port == 9000
    # An integer is accepted for a float setting and stored as a float.
    assert config.server.shutdown_timeout_s == 5.0 and isinstance(config.server.shutdown_timeout_s, float)
    assert config.database.url == "postgresql://x/y"
    assert config.auth == Config().auth


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[server]\nport = 9000\nlog_format = \"text\"\n")
    config = load_config(path, {
        "PSC119_SERVER_PORT": "9100",                       # int
        "PSC119_DATABASE_COMMAND_TIMEOUT_S": "2.5",         # float
        "PSC119_SERVER_LOG_FORMAT": "json",                 # str
        "PSC119_DATABASE_URL": "postgresql://127.0.0.1/db",  # str with punctuation
        "PSC119_AUTH_ARGON2_TIME_COST": "1",
        "HOME": "/root",                                     # not ours: ignored
    })
    assert config.server.port == 9100
    assert config.database.command_timeout_s == 2.5
    assert config.server.log_format == "json"
    assert config.database.url == "postgresql://127.0.0.1/db"
    assert config.auth.argon2_time_cost == 1


def test_environment_text_is_read_as_the_setting_type() -> None:
    # No setting is a boolean yet; the reader used for environment text still has to get them right.
    for text in ("1", "true", "YES", "on"):
        assert _from_text("x.flag", bool, text) is True
    for text in ("0", "false", "No", "off"):
        assert _from_text("x.flag", bool, text) is False
    with pytest.raises(ConfigError) as info:
        _from_text("x.flag", bool, "maybe")
    assert info.value.key == "x.flag"
    assert _from_text("x.n", int, "42") == 42
    assert _from_text("x.f", float, "0.25") == 0.25
    assert _from_text("x.s", str, "anything") == "anything"


@pytest.mark.parametrize(
    "text,key",
    [
        ("[nosuch]\nx = 1\n", "nosuch"),
        ("port = 8119\n", "port"),
        ("server = 5\n", "server"),
        ("[server]\nportt = 8119\n", "server.portt"),
        ('[server]\nport = "x"\n', "server.port"),
        ("[server]\nport = true\n", "server.port"),
        ("[server]\nport = 80.5\n", "server.port"),
        ("[server]\nport = 70000\n", "server.port"),
        ("[server]\nport = -1\n", "server.port"),
        ('[server]\nlog_format = "xml"\n', "server.log_format"),
        ('[server]\nlog_level = "info"\n', "server.log_level"),
        ("[server]\nshutdown_timeout_s = 0\n", "server.shutdown_timeout_s"),
        ('[server]\nshutdown_timeout_s = "8"\n', "server.shutdown_timeout_s"),
        ("[database]\npool_min = 30\n", "database.pool_min"),
        ("[database]\npool_min = 0\n", "database.pool_min"),
        ('[database]\nembedded_dbname = "psc-119"\n', "database.embedded_dbname"),
        ("[server]\nhsts_max_age_s = -1\n", "server.hsts_max_age_s"),
        ("[dispatch]\nunit_replay_h = 0\n", "dispatch.unit_replay_h"),
        ("[dispatch]\nunit_replay_h = 1000000\n", "dispatch.unit_replay_h"),
        ("[auth]\nargon2_memory_kib = 1024\n", "auth.argon2_memory_kib"),
        ("[auth]\nsession_ttl_h = false\n", "auth.session_ttl_h"),
        ('[server]\ntrusted_proxies = ["10.0.0.0/33"]\n', "server.trusted_proxies"),
        ('[server]\ntrusted_proxies = "10.0.0.1"\n', "server.trusted_proxies"),
        ("[auth]\nlogin_delay_max_s = 600\n", "auth.login_delay_max_s"),
        ("[auth]\nargon2_nice = -5\n", "auth.argon2_nice"),
        ("[auth]\nargon2_threads = 0\n", "auth.argon2_threads"),
        ('[satusehat]\nauth_url = "https://api-satusehat.kemkes.go.id/oauth2/v1"\n', "satusehat.auth_url"),
        ('[satusehat]\nbase_url = "ftp://x"\n', "satusehat.base_url"),
        ('[satusehat]\norganization_ids = ["rs-premier-bintaro"]\n', "satusehat.organization_ids"),
    ],
)
def test_bad_file_raises_config_error_naming_the_key(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), {})
    assert info.value.key == key
    assert key in str(info.value)


@pytest.mark.parametrize(
    "environ,key",
    [
        ({"PSC119_SERVER_PORTT": "1"}, "PSC119_SERVER_PORTT"),
        ({"PSC119_NOSUCH_PORT": "1"}, "PSC119_NOSUCH_PORT"),
        ({"PSC119_DEBUG": "1"}, "PSC119_DEBUG"),
        ({"PSC119_SERVER_PORT": "x"}, "server.port"),
        ({"PSC119_SERVER_PORT": "true"}, "server.port"),
        ({"PSC119_SERVER_PORT": "70000"}, "server.port"),
        ({"PSC119_DATABASE_COMMAND_TIMEOUT_S": "soon"}, "database.command_timeout_s"),
        ({"PSC119_SERVER_LOG_FORMAT": "xml"}, "server.log_format"),
        ({"PSC119_DATABASE_POOL_MIN": "21"}, "database.pool_min"),
        ({"PSC119_DATABASE_POOL_MAX": "1"}, "database.pool_min"),
        ({"PSC119_SERVER_TRUSTED_PROXIES": "10.0.0.1, proxy.internal"}, "server.trusted_proxies"),
    ],
)
def test_bad_environment_raises_config_error_naming_the_key(environ: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(CONFIG_TOML, environ)
    assert info.value.key == key
    assert key in str(info.value)


def test_missing_or_broken_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "absent.toml", {})
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[server\nport = 1\n"), {})


def test_pool_bounds_are_checked_on_the_dataclass_too() -> None:
    with pytest.raises(ConfigError) as info:
        Config(database=DatabaseSettings(pool_min=5, pool_max=4))
    assert info.value.key == "database.pool_min"


async def run(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *args, cwd=REPO, env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, err.decode()


async def test_command_line_refuses_a_bad_config_and_names_the_key(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PSC119_")}
    # A database URL nobody listens on: if the config were accepted, nothing would touch a real database.
    env["PSC119_DATABASE_URL"] = "postgresql://psc119@127.0.0.1:9/none"
    bad_port = tmp_path / "port.toml"
    bad_port.write_text("[server]\nport = 70000\n")
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("[auth]\nargon2_time_costs = 1\n")
    cases = [
        ([*PSC119, "--config", str(bad_port), "migrate"], env, "server.port"),
        ([*PSC119, "--config", str(unknown), "migrate"], env, "auth.argon2_time_costs"),
        ([*PSC119, "--config", str(CONFIG_TOML), "migrate"], {**env, "PSC119_SERVER_LOG_FORMAT": "xml"}, "server.log_format"),
        ([*PSC119, "--config", str(CONFIG_TOML), "serve", "--port", "70000"], env, "--port"),
    ]
    results = await asyncio.gather(*(run(args, environ) for args, environ, _ in cases))
    for (args, _, key), (code, stderr) in zip(cases, results, strict=True):
        assert code != 0, args
        assert key in stderr, (args, stderr)
        assert "Traceback" not in stderr
