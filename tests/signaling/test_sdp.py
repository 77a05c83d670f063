from __future__ import annotations

import pytest

from signaling.errors import InvalidMessage
from signaling.sdp import IceCandidate, check_sdp, parse_candidate


def test_sdp_with_crlf_or_lf(sdp_offer: str) -> None:
    check_sdp(sdp_offer)
    check_sdp(sdp_offer.replace("\r\n", "\n"))
    check_sdp(sdp_offer.rstrip("\r\n"))  # no final line ending


@pytest.mark.parametrize(
    ("sdp", "reason"),
    [
        ("", 'start with the line "v=0"'),
        ("hello", 'start with the line "v=0"'),
        ("v=1\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\n", 'start with the line "v=0"'),
        ("v=0\r\ns=-\r\n", '"o=" and "s="'),
        ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\n\r\nt=0 0\r\n", "line 4"),
        ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nnot sdp\r\n", "line 4"),
        ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\na=x\x00y\r\n", "line 4"),
        ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nA=upper\r\n", "line 4"),
    ],
)
def test_not_sdp(sdp: str, reason: str) -> None:
    with pytest.raises(InvalidMessage, match=reason) as info:
        check_sdp(sdp)
    assert info.value.field == "sdp"


def test_sdp_size_limit(sdp_offer: str) -> None:
    padding = "a=x-pad:" + "p" * 100 + "\r\n"
    big = sdp_offer + padding * ((64 * 1024 - len(sdp_offer)) // len(padding))
    assert len(big) <= 64 * 1024
    check_sdp(big)
    too_big = big + padding
    with pytest.raises(InvalidMessage, match="at most 65536 bytes"):
        check_sdp(too_big)
    # the limit is in UTF-8 bytes, not characters
    with pytest.raises(InvalidMessage, match="at most 65536 bytes"):
        check_sdp(sdp_offer + "s=" + "é" * 33_000 + "\r\n")


def test_parse_chrome_srflx_candidate() -> None:
    text = (
        "candidate:842163049 1 udp 1677729535 192.0.2.3 46154 typ srflx "
        "raddr 10.0.1.1 rport 46154 generation 0 ufrag EEtu network-cost 50"
    )
    assert parse_candidate(text) == IceCandidate(
        foundation="842163049",
        component=1,
        transport="udp",
        priority=1677729535,
        address="192.0.2.3",
        port=46154,
        type="srflx",
        related_address="10.0.1.1",
        related_port=46154,
        extensions=(("generation", "0"), ("ufrag", "EEtu"), ("network-cost", "50")),
    )


@pytest.mark.parametrize(
    "text",
    [
        "candidate:1 1 UDP 2122260223 4d5e6f70-1a2b-3c4d-5e6f-7a8b9c0d1e2f.local 54321 typ host",
        "candidate:2 1 udp 2122262783 2001:db8::7 50000 typ host generation 0 network-id 2",
        "candidate:3 1 tcp 1518280447 192.168.1.5 9 typ host tcptype active generation 0",
        "candidate:4 1 udp 41885439 203.0.113.7 3478 typ relay raddr 198.51.100.2 rport 50000",
        "candidate:a+b/C 256 udp 4294967295 127.0.0.1 0 typ prflx",
    ],
)
def test_valid_candidates(text: str) -> None:
    assert parse_candidate(text).foundation == text.split(" ")[0].removeprefix("candidate:")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("1 1 udp 2122260223 192.168.1.20 54321 typ host", 'start with "candidate:"'),
        ("a=candidate:1 1 udp 1 192.168.1.20 1 typ host", 'start with "candidate:"'),
        ("candidate:1 0 udp 1 192.168.1.20 1 typ host", "component"),
        ("candidate:1 257 udp 1 192.168.1.20 1 typ host", "component"),
        ("candidate:1 1 sctp 1 192.168.1.20 1 typ host", "transport"),
        ("candidate:1 1 udp high 192.168.1.20 1 typ host", "priority"),
        ("candidate:1 1 udp 4294967296 192.168.1.20 1 typ host", "priority"),
        ("candidate:1 1 udp -1 192.168.1.20 1 typ host", "priority"),
        ("candidate:1 1 udp 1 192.168.1.20 65536 typ host", "port"),
        ("candidate:1 1 udp 1 192.168.1.20 +5 typ host", "port"),
        ("candidate:1 1 udp 1 not_an_address! 1 typ host", "address"),
        ("candidate:1 1 udp 1 192.168.1.20 1 typ bogus", "typ host"),
        ("candidate:1 1 udp 1 192.168.1.20 1 type host", "typ host"),
        ("candidate:1 1 udp 1 192.168.1.20 1", "missing parts"),
        ("candidate:1 1 udp 1  192.168.1.20 1 typ host", "single spaces"),
        ("candidate:" + "f" * 33 + " 1 udp 1 192.168.1.20 1 typ host", "foundation"),
        ("candidate:f*x 1 udp 1 192.168.1.20 1 typ host", "foundation"),
        ("candidate:1 1 udp 1 192.168.1.20 1 typ srflx raddr", "raddr needs"),
        ("candidate:1 1 udp 1 192.168.1.20 1 typ srflx raddr 10.0.0.1 rport x", "rport"),
        ("candidate:1 1 udp 1 192.168.1.20 1 typ host generation", "name-value pairs"),
        ("candidate:1 1 tcp 1 192.168.1.20 9 typ host tcptype sideways", "tcptype"),
        ("candidate:1 1 udp 1 192.168.1.20 1 typ host rport 5 raddr 1.2.3.4", "in that order"),
        ("candidate:1 1 udp 1 192.168.1.20 1 typ host x " + "v" * 1024, "at most 1024"),
    ],
)
def test_malformed_candidates(text: str, reason: str) -> None:
    with pytest.raises(InvalidMessage, match=reason) as info:
        parse_candidate(text)
    assert info.value.field == "candidate"
