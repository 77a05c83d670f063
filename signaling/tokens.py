"""Join tokens: how a member proves, at join, that the server let it into a room.

A token is 32 random bytes from `secrets`, URL-safe base64 (43 characters),
never starting with ``-`` (a command line would take it for an option),
handed to one user for one consult. Only its SHA-256 digest is stored (in a
`JoinGrant`, and in PostgreSQL by the server); a presented token is hashed and
compared with `hmac.compare_digest`. A token is bound to (consult, user) and
expires; it may be presented again until then (reconnects), and issuing a new
one to the same member replaces the old grant in the room.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from . import _check
from .errors import InvalidValue, TokenRejected
from .ids import ConsultId, UserId

__all__ = [
    "DEFAULT_TOKEN_TTL",
    "IssuedToken",
    "JoinGrant",
    "issue_join_token",
    "token_digest",
    "verify_join_token",
]

DEFAULT_TOKEN_TTL = timedelta(minutes=30)
TOKEN_BYTES = 32
TOKEN_MAX_LENGTH = 256


def token_digest(token: str) -> bytes:
    """SHA-256 of the token's UTF-8 bytes: what is stored instead of the token."""
    return hashlib.sha256(token.encode("utf-8")).digest()


@dataclass(frozen=True, slots=True)
class JoinGrant:
    """The stored side of a join token: its digest, whom it admits where, until when."""

    consult_id: ConsultId
    user: UserId
    digest: bytes = field(repr=False)
    expires_at: datetime

    def __post_init__(self) -> None:
        _check.identifier(self.consult_id, "consult_id")
        _check.identifier(self.user, "user")
        if not isinstance(self.digest, bytes) or len(self.digest) != hashlib.sha256().digest_size:
            raise InvalidValue("digest", "must be a 32-byte SHA-256 digest")
        _check.aware(self.expires_at, "expires_at")


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A fresh token (give it to the user once, never store or log it) and its grant."""

    token: str = field(repr=False)
    grant: JoinGrant


def issue_join_token(
    consult_id: ConsultId,
    user: UserId,
    now: datetime,
    ttl: timedelta = DEFAULT_TOKEN_TTL,
) -> IssuedToken:
    """A new random token for ``user`` in ``consult_id``, valid for ``ttl`` from ``now``."""
    _check.aware(now, "now")
    if ttl <= timedelta(0):
        raise InvalidValue("ttl", "must be positive")
    token = secrets.token_urlsafe(TOKEN_BYTES)
    while token.startswith("-"):  # 1 in 64: draw again rather than change the alphabet
        token = secrets.token_urlsafe(TOKEN_BYTES)
    grant = JoinGrant(consult_id, user, token_digest(token), now + ttl)
    return IssuedToken(token, grant)


def verify_join_token(
    grant: JoinGrant,
    token: str,
    *,
    consult_id: ConsultId,
    user: UserId,
    now: datetime,
) -> None:
    """Accept ``token`` from ``user`` joining ``consult_id`` at ``now``, or raise `TokenRejected`.

    The digest comparison is constant-time; the binding and the expiry are
    checked after it, so a wrong token never learns anything about the grant.
    """
    _check.aware(now, "now")
    if not isinstance(token, str) or not 0 < len(token) <= TOKEN_MAX_LENGTH:
        raise TokenRejected("malformed token")
    if not hmac.compare_digest(token_digest(token), grant.digest):
        raise TokenRejected("token not recognised")
    if grant.consult_id != consult_id:
        raise TokenRejected("token was issued for another consult")
    if grant.user != user:
        raise TokenRejected("token was issued to another user")
    if now >= grant.expires_at:
        raise TokenRejected("token expired")
