from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from signaling.errors import InvalidValue, TokenRejected
from signaling.ids import ConsultId, UserId
from signaling.tokens import (
    JoinGrant,
    issue_join_token,
    token_digest,
    verify_join_token,
)

T0 = datetime(2025, 3, 3, 2, 0, tzinfo=UTC)
C1, C2 = ConsultId("c-1"), ConsultId("c-2")
ANI, BUDI = UserId("dr-ani"), UserId("dr-budi")


def test_digest_is_sha256_of_the_token() -> None:
    # Literal computed once with `printf %s consult-token-example | openssl dgst -sha256`.
    expected = "6ee362f657241fa37e14c9398374ed5e2dc439f190638982effed1e59727dea0"
    assert token_digest("consult-token-example").hex() == expected


def test_issued_token_is_random_urlsafe_and_only_its_hash_is_kept() -> None:
    issued = issue_join_token(C1, ANI, T0, timedelta(minutes=30))
    other = issue_join_token(C1, ANI, T0, timedelta(minutes=30))
    assert issued.token != other.token
    assert len(issued.token) == 43  # 32 bytes, base64url without padding
    assert set(issued.token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    grant = issued.grant
    assert (grant.consult_id, grant.user, grant.expires_at) == (C1, ANI, T0 + timedelta(minutes=30))
    assert grant.digest == hashlib.sha256(issued.token.encode()).digest()
    assert issued.token not in repr(issued)
    assert issued.token.encode() not in repr(grant).encode()


def test_valid_token_is_accepted_until_expiry() -> None:
    issued = issue_join_token(C1, ANI, T0, timedelta(minutes=30))
    verify_join_token(issued.grant, issued.token, consult_id=C1, user=ANI, now=T0)
    verify_join_token(
        issued.grant, issued.token, consult_id=C1, user=ANI, now=T0 + timedelta(minutes=29)
    )
    with pytest.raises(TokenRejected, match="expired"):
        verify_join_token(
            issued.grant, issued.token, consult_id=C1, user=ANI, now=T0 + timedelta(minutes=30)
        )


@pytest.mark.parametrize(
    ("token_change", "consult", "user", "reason"),
    [
        ("x", C1, ANI, "not recognised"),
        ("", C2, ANI, "another consult"),
        ("", C1, BUDI, "another user"),
    ],
)
def test_rejections(token_change: str, consult: ConsultId, user: UserId, reason: str) -> None:
    issued = issue_join_token(C1, ANI, T0)
    with pytest.raises(TokenRejected, match=reason) as info:
        verify_join_token(
            issued.grant, issued.token + token_change, consult_id=consult, user=user, now=T0
        )
    assert info.value.field == "token"
    assert info.value.code == "token_rejected"


def test_malformed_tokens_and_grants() -> None:
    issued = issue_join_token(C1, ANI, T0)
    with pytest.raises(TokenRejected, match="malformed"):
        verify_join_token(issued.grant, "", consult_id=C1, user=ANI, now=T0)
    with pytest.raises(TokenRejected, match="malformed"):
        verify_join_token(issued.grant, "a" * 257, consult_id=C1, user=ANI, now=T0)
    with pytest.raises(InvalidValue) as info:
        JoinGrant(C1, ANI, b"short", T0)
    assert info.value.field == "digest"
    with pytest.raises(InvalidValue):
        issue_join_token(C1, ANI, T0, timedelta(0))
    with pytest.raises(InvalidValue):
        issue_join_token(C1, ANI, datetime(2025, 3, 3))


def test_an_issued_token_never_starts_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    # One draw in 64 starts with "-", which a command line (`psc119 peer --token $T`) takes for an option.
    draws = iter(["-" + "A" * 42, "-" + "B" * 42, "C" * 43])
    monkeypatch.setattr("signaling.tokens.secrets.token_urlsafe", lambda n: next(draws))
    issued = issue_join_token(C1, ANI, T0)
    assert issued.token == "C" * 43
    assert issued.grant.digest == token_digest("C" * 43)
