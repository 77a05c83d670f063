from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta, timezone

import pytest

from signaling.errors import InvalidValue
from signaling.turn import IceConfig, IceServer, check_ice_url, ice_servers, turn_credentials

WIB = timezone(timedelta(hours=7))
EXPIRY = 1700000000
HOUR = timedelta(hours=1)


def at(unix: float, tz: timezone = UTC) -> datetime:
    return datetime.fromtimestamp(unix, tz=tz)


# Literals computed once in a shell, independently of the code under test:
#   printf %s 1700000000:alice | openssl dgst -sha1 -hmac north -binary | base64
#   printf %s 1700003600:alice | openssl dgst -sha1 -hmac north -binary | base64
VECTOR = "Cd/49soE35ICqcJF/bCTn8Z4OyE="
VECTOR_PLUS_HOUR = "wjwSXO2ch1B6VaLTLMy2Avn5O9o="


def test_known_vector() -> None:
    username, credential, expires_at = turn_credentials("north", "alice", at(EXPIRY - 3600), HOUR)
    assert username == "1700000000:alice"
    assert credential == VECTOR
    assert expires_at == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)


def test_second_vector_and_bytes_secret() -> None:
    creds = turn_credentials(b"north", "alice", at(EXPIRY), HOUR)
    assert creds.username == "1700003600:alice"
    assert creds.credential == VECTOR_PLUS_HOUR


def test_matches_the_scheme_computed_with_hmac_directly() -> None:
    creds = turn_credentials("s3cr3t", "dr-budi", at(EXPIRY), timedelta(hours=6))
    expected = base64.b64encode(
        hmac.new(b"s3cr3t", b"1700021600:dr-budi", hashlib.sha1).digest()
    ).decode()
    assert (creds.username, creds.credential) == ("1700021600:dr-budi", expected)


def test_time_zone_and_fractions_do_not_matter() -> None:
    utc = turn_credentials("north", "alice", at(EXPIRY - 3600), HOUR)
    wib = turn_credentials("north", "alice", at(EXPIRY - 3600 + 0.75, WIB), HOUR)
    assert wib == utc


def test_bad_inputs() -> None:
    with pytest.raises(InvalidValue) as info:
        turn_credentials("", "alice", at(EXPIRY), HOUR)
    assert info.value.field == "turn_secret"
    with pytest.raises(InvalidValue):
        turn_credentials("north", "alice", at(EXPIRY), timedelta(milliseconds=500))
    with pytest.raises(InvalidValue):
        turn_credentials("north", "alice", datetime(2023, 11, 14), HOUR)
    with pytest.raises(InvalidValue):
        turn_credentials("north", "al ice", at(EXPIRY), HOUR)


def test_ice_servers_builder() -> None:
    config = IceConfig(
        stun_urls=("stun:stun.psc119.tangerangselatankota.go.id:3478",),
        turn_urls=(
            "turn:turn.psc119.tangerangselatankota.go.id:3478?transport=udp",
            "turns:turn.psc119.tangerangselatankota.go.id:5349?transport=tcp",
        ),
        turn_secret="north",
        turn_ttl=HOUR,
    )
    servers = ice_servers(config, "alice", at(EXPIRY - 3600))
    assert [s.to_dict() for s in servers] == [
        {"urls": ["stun:stun.psc119.tangerangselatankota.go.id:3478"]},
        {
            "urls": [
                "turn:turn.psc119.tangerangselatankota.go.id:3478?transport=udp",
                "turns:turn.psc119.tangerangselatankota.go.id:5349?transport=tcp",
            ],
            "username": "1700000000:alice",
            "credential": VECTOR,
        },
    ]
    assert VECTOR not in repr(servers) and "north" not in repr(config)


def test_nothing_configured_means_an_empty_list() -> None:
    assert ice_servers(IceConfig(), "alice", at(EXPIRY)) == ()
    only_stun = IceConfig(stun_urls=("stun:127.0.0.1:3478",))
    assert ice_servers(only_stun, "alice", at(EXPIRY)) == (IceServer(("stun:127.0.0.1:3478",)),)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"stun_urls": ("turn:t.example:3478",)}, "stun_urls[0]"),
        ({"stun_urls": ("http://stun.example",)}, "stun_urls[0]"),
        ({"turn_urls": ("stun:s.example",), "turn_secret": "x"}, "turn_urls[0]"),
        ({"turn_urls": ("turn:t.example",)}, "turn_secret"),
        ({"turn_urls": ("turn:t.example:99999",), "turn_secret": "x"}, "turn_urls[0]"),
        ({"turn_urls": ("turn:t.example?transport=sctp",), "turn_secret": "x"}, "turn_urls[0]"),
        ({"turn_ttl": timedelta(0)}, "turn_ttl"),
    ],
)
def test_config_is_validated(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidValue) as info:
        IceConfig(**kwargs)  # type: ignore[arg-type]
    assert info.value.field == field


@pytest.mark.parametrize(
    "url",
    ["stun:192.0.2.1", "stuns:stun.example.org:5349", "turn:[2001:db8::1]:3478", "turns:t.example"],
)
def test_valid_urls(url: str) -> None:
    assert check_ice_url(url, "url") == url


def test_turn_server_entry_needs_credentials() -> None:
    with pytest.raises(InvalidValue) as info:
        IceServer(("turn:t.example",))
    assert info.value.field == "credential"
    with pytest.raises(InvalidValue):
        IceServer(())
