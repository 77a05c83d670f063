"""The relay's per-message work: a routed message is stamped, not parsed again; the one-pass checks accept
exactly what the line-by-line and per-character checks accept."""

from __future__ import annotations

import dataclasses
import unicodedata
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from signaling import _check, sdp
from signaling.errors import InvalidMessage
from signaling.ids import ConsultId, UserId
from signaling.members import PeerKind
from signaling.messages import Answer, Bye, Candidate, Chat, IceRestart, Join, Quality, encode, parse_client, stamped
from signaling.room import Room
from signaling.tokens import issue_join_token

T0 = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)
ROOM, ANI, BUDI = ConsultId("c-1"), UserId("dr-ani"), UserId("dr-budi")


def _joined() -> tuple[Room, int]:
    room = Room(ROOM, ANI, BUDI)
    generation = 0
    for user in (ANI, BUDI):
        issued = issue_join_token(ROOM, user, T0, timedelta(minutes=30))
        room.add_grant(issued.grant)
        result = room.join(user, Join(issued.token, PeerKind.BROWSER), T0)
        generation = result.generation if user == ANI else generation
    return room, generation


def test_routing_an_offer_does_not_check_its_sdp_again(sdp_offer: str, monkeypatch: pytest.MonkeyPatch) -> None:
    room, generation = _joined()
    offer = parse_client({"type": "offer", "sdp": sdp_offer})
    checks: list[str] = []
    monkeypatch.setattr("signaling.messages.check_sdp", lambda text, **_: checks.append(text))
    [delivery] = room.route(ANI, generation, offer, T0)
    assert checks == []  # checked once, when it was parsed
    assert delivery.message == dataclasses.replace(offer, sender=ANI, consult=ROOM, to=BUDI)


def test_routing_a_candidate_does_not_parse_it_again(monkeypatch: pytest.MonkeyPatch) -> None:
    room, generation = _joined()
    candidate = parse_client({"type": "candidate", "candidate": "candidate:1 1 udp 2122260223 10.0.0.1 9 typ host",
                              "sdpMid": "0", "from": "someone-else"})
    parsed: list[str] = []
    monkeypatch.setattr("signaling.messages.check_candidate", lambda text, **_: parsed.append(text))
    [delivery] = room.route(ANI, generation, candidate, T0)
    assert parsed == []
    assert encode(delivery.message) == encode(dataclasses.replace(candidate, sender=ANI, consult=ROOM, to=BUDI))


@pytest.mark.parametrize("message", [
    Answer("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\n"),
    Candidate("", sdp_mid="0", username_fragment="abcd"),
    IceRestart(),
    Bye("hanging up"),
    Chat("hello\nthere", id="m1", to=BUDI),
    Quality("audio_only", 12.5),
])
def test_stamped_equals_replace(message: Answer | Candidate | IceRestart | Bye | Chat | Quality) -> None:
    out = stamped(message, sender=ANI, consult=ROOM, to=BUDI)
    assert out == dataclasses.replace(message, sender=ANI, consult=ROOM, to=BUDI)
    assert type(out) is type(message) and out is not message and message.sender is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        out.to = ANI  # type: ignore[misc]


def _line_by_line(text: str) -> bool:
    """The line-by-line check alone (the one-pass pattern bypassed)."""
    try:
        sdp._check_lines(text, "sdp")
    except InvalidMessage:
        return False
    return True


_SDP_PIECES = st.sampled_from(["v=0", "o=- 1 1 IN IP4 0.0.0.0", "s=-", "a=x", "t=0 0", "\r\n", "\n", "\r", "\t", "=",
                               "A=x", "a=\x00", "a=\x7f", "é", "", " ", "v=1", "m=audio 9"])


@given(st.lists(_SDP_PIECES, max_size=12))
def test_one_pass_sdp_check_accepts_what_the_line_check_accepts(pieces: list[str]) -> None:
    for text in ("".join(pieces), "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-" + "".join(pieces)):
        fast = sdp._SDP_TEXT.fullmatch(text) is not None
        if fast:
            assert _line_by_line(text), repr(text)
        sdp_ok = True
        try:
            sdp.check_sdp(text)
        except InvalidMessage:
            sdp_ok = False
        assert sdp_ok == _line_by_line(text), repr(text)


def test_control_characters_are_unicode_category_cc() -> None:
    for code in range(0x3000):
        ch = chr(code)
        control = unicodedata.category(ch) == "Cc"
        assert _check._has_control(ch, multiline=False) == control, hex(code)
        assert _check._has_control(ch, multiline=True) == (control and ch not in "\n\r\t"), hex(code)


_CANDIDATE_WORDS = st.sampled_from([
    "candidate:1", "candidate:abc+/", "candidate:", "1", "0", "256", "257", "udp", "TCP", "sctp", "2122260223", "4294967296",
    "10.0.0.1", "::1", "fe80::1%eth0", "abc.local", "-bad-", "999.1.1.1", "9", "65535", "65536", "typ", "host", "srflx",
    "cloud", "raddr", "rport", "tcptype", "active", "so", "x", "generation", "ufrag", "é", "a\tb", "",
])


@given(st.lists(_CANDIDATE_WORDS, max_size=16))
def test_the_quick_candidate_check_refuses_exactly_what_the_parser_refuses(words: list[str]) -> None:
    for text in (" ".join(words), "candidate:1 1 udp 2122260223 10.0.0.1 9 typ host " + " ".join(words)):
        try:
            sdp.parse_candidate(text)
            expected = None
        except InvalidMessage as exc:
            expected = exc.reason
        try:
            sdp.check_candidate(text)
            got = None
        except InvalidMessage as exc:
            got = exc.reason
        assert got == expected, text
