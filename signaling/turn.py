"""ICE server configuration and time-limited TURN credentials.

TURN credentials follow the TURN REST API (draft-uberti-behave-turn-rest-00),
which coturn checks with ``use-auth-secret`` / ``static-auth-secret``::

    username   = f"{expiry_unix}:{user}"
    credential = base64(HMAC-SHA1(secret, username))

The TURN server recomputes the credential from its copy of the secret and
refuses it once ``expiry_unix`` has passed; nothing is stored per user.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from . import _check
from .errors import InvalidValue

__all__ = [
    "DEFAULT_TURN_TTL",
    "IceConfig",
    "IceServer",
    "TurnCredentials",
    "check_ice_url",
    "ice_servers",
    "turn_credentials",
]

DEFAULT_TURN_TTL = timedelta(hours=6)

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST = rf"(?:\[[0-9A-Fa-f:.]+\]|{_LABEL}(?:\.{_LABEL})*)"  # [IPv6], IPv4 or a host name
_PORT = r"(?::(?P<port>[0-9]{1,5}))?"
#: RFC 7064 (stun/stuns) and RFC 7065 (turn/turns) URIs.
_STUN_URL = re.compile(rf"(?P<scheme>stuns?):{_HOST}{_PORT}")
_TURN_URL = re.compile(rf"(?P<scheme>turns?):{_HOST}{_PORT}(?:\?transport=(?:udp|tcp))?")


class TurnCredentials(NamedTuple):
    username: str
    credential: str
    expires_at: datetime


def turn_credentials(
    secret: str | bytes, user: str, now: datetime, ttl: timedelta = DEFAULT_TURN_TTL
) -> TurnCredentials:
    """Credentials for ``user`` valid from ``now`` for ``ttl`` (whole seconds, rounded down)."""
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    if not key:
        raise InvalidValue("turn_secret", "must not be empty")
    _check.identifier(user, "user")
    _check.aware(now, "now")
    seconds = math.floor(ttl.total_seconds())
    if seconds < 1:
        raise InvalidValue("turn_ttl", "must be at least one second")
    expiry = math.floor(now.timestamp()) + seconds
    username = f"{expiry}:{user}"
    digest = hmac.new(key, username.encode("utf-8"), hashlib.sha1).digest()
    credential = base64.b64encode(digest).decode("ascii")
    return TurnCredentials(username, credential, datetime.fromtimestamp(expiry, tz=UTC))


def check_ice_url(url: object, field: str, *, turn: bool | None = None) -> str:
    """A ``stun:``/``stuns:`` or ``turn:``/``turns:`` URI (``turn`` narrows which)."""
    if not isinstance(url, str):
        raise InvalidValue(field, "must be a string")
    stun_ok = turn is not True and _STUN_URL.fullmatch(url)
    match = stun_ok or (turn is not False and _TURN_URL.fullmatch(url))
    if not match:
        schemes = {None: "stun:, stuns:, turn: or turns:", True: "turn: or turns:"}
        raise InvalidValue(field, f"must be a {schemes.get(turn, 'stun: or stuns:')} URI")
    port = match.group("port")
    if port is not None and not 1 <= int(port) <= 65535:
        raise InvalidValue(field, "port must be in 1..65535")
    return url


def _is_turn(url: str) -> bool:
    return url.startswith(("turn:", "turns:"))


@dataclass(frozen=True, slots=True)
class IceServer:
    """One RTCIceServer entry. TURN URLs need a username and a credential."""

    urls: tuple[str, ...]
    username: str | None = None
    credential: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.urls, tuple) or not self.urls:
            raise InvalidValue("urls", "must be a non-empty list")
        for index, url in enumerate(self.urls):
            check_ice_url(url, f"urls[{index}]")
        if self.username is not None:
            _check.text(self.username, "username", max_len=512)
        if self.credential is not None:
            _check.text(self.credential, "credential", max_len=512)
        if any(_is_turn(url) for url in self.urls) and (
            self.username is None or self.credential is None
        ):
            raise InvalidValue("credential", "TURN URLs need a username and a credential")

    def to_dict(self) -> dict[str, object]:
        """The browser's ``RTCIceServer`` dictionary."""
        result: dict[str, object] = {"urls": list(self.urls)}
        if self.username is not None:
            result["username"] = self.username
        if self.credential is not None:
            result["credential"] = self.credential
        return result


@dataclass(frozen=True, slots=True)
class IceConfig:
    """The ICE part of the server's configuration, as ``ice_servers`` needs it."""

    stun_urls: tuple[str, ...] = ()
    turn_urls: tuple[str, ...] = ()
    turn_secret: str | None = field(default=None, repr=False)
    turn_ttl: timedelta = DEFAULT_TURN_TTL

    def __post_init__(self) -> None:
        for index, url in enumerate(self.stun_urls):
            check_ice_url(url, f"stun_urls[{index}]", turn=False)
        for index, url in enumerate(self.turn_urls):
            check_ice_url(url, f"turn_urls[{index}]", turn=True)
        if self.turn_urls and not self.turn_secret:
            raise InvalidValue("turn_secret", "is required when turn_urls are configured")
        if self.turn_ttl < timedelta(seconds=1):
            raise InvalidValue("turn_ttl", "must be at least one second")


def ice_servers(config: IceConfig, user: str, now: datetime) -> tuple[IceServer, ...]:
    """The RTCIceServer list for ``user`` at ``now``: STUN URLs without credentials,
    TURN/TURNS URLs with fresh REST-API credentials. Empty when nothing is configured
    (tests: an explicit empty list, never aiortc's public-STUN default)."""
    servers: list[IceServer] = []
    if config.stun_urls:
        servers.append(IceServer(config.stun_urls))
    if config.turn_urls:
        secret = config.turn_secret or ""  # IceConfig guarantees one; "" would be refused
        username, credential, _ = turn_credentials(secret, user, now, config.turn_ttl)
        servers.append(IceServer(config.turn_urls, username, credential))
    return tuple(servers)
