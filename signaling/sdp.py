"""Checks on the two SDP texts the signaling relays: session descriptions and
ICE candidate attributes. Pure functions; errors are `InvalidMessage` naming
the message field.

The server does not interpret SDP; it only refuses what cannot be SDP, so a
peer never receives garbage (or a 10 MB "offer") from the relay.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, replace

from .errors import InvalidMessage

__all__ = ["MAX_CANDIDATE_LENGTH", "MAX_SDP_BYTES", "IceCandidate", "check_candidate", "check_sdp", "parse_candidate"]

MAX_SDP_BYTES = 64 * 1024
MAX_CANDIDATE_LENGTH = 1024

_SDP_LINE = re.compile(r"[a-z]=[^\x00-\x08\x0a-\x1f\x7f]*")
# What the line-by-line check below accepts, as one pattern over the whole text (one scan in C); anything it does
# not match goes through the line-by-line check, which names the fault.
_SDP_TEXT = re.compile(
    r"v=0\r?\no=[^\x00-\x08\x0a-\x1f\x7f]*\r?\ns=[^\x00-\x08\x0a-\x1f\x7f]*"
    r"(?:\r?\n[a-z]=[^\x00-\x08\x0a-\x1f\x7f]*)*\r?\n?"
)


def check_sdp(sdp: str, *, field: str = "sdp") -> None:
    """A session description: at most 64 KB, ``v=0`` then ``o=`` and ``s=`` lines,
    every line ``<letter>=<value>``, lines ended by CRLF or LF."""
    if len(sdp) > MAX_SDP_BYTES or len(sdp.encode("utf-8")) > MAX_SDP_BYTES:
        raise InvalidMessage(field, f"must be at most {MAX_SDP_BYTES} bytes")
    if not _SDP_TEXT.fullmatch(sdp):
        _check_lines(sdp, field)


def _check_lines(sdp: str, field: str) -> None:
    """The line-by-line check: what ``_SDP_TEXT`` does not match is refused here, naming the fault."""
    lines = sdp.split("\n")
    if lines[-1] == "":
        lines.pop()  # the final line ending
    lines = [line[:-1] if line.endswith("\r") else line for line in lines]
    if not lines or lines[0] != "v=0":
        raise InvalidMessage(field, 'must start with the line "v=0"')
    if len(lines) < 3 or not lines[1].startswith("o=") or not lines[2].startswith("s="):
        raise InvalidMessage(field, 'must continue with "o=" and "s=" lines')
    for number, line in enumerate(lines, start=1):
        if not _SDP_LINE.fullmatch(line):
            raise InvalidMessage(field, f'line {number} is not "<type>=<value>"')


@dataclass(frozen=True, slots=True)
class IceCandidate:
    """The parts of an ``a=candidate`` value (RFC 8839 section 5.1)."""

    foundation: str
    component: int
    transport: str  # "udp" or "tcp", lower-cased
    priority: int
    address: str
    port: int
    type: str  # host, srflx, prflx or relay
    related_address: str | None = None
    related_port: int | None = None
    extensions: tuple[tuple[str, str], ...] = ()


_FOUNDATION = re.compile(r"[A-Za-z0-9+/]{1,32}")
_DIGITS = re.compile(r"[0-9]{1,10}")
_HOSTNAME = re.compile(
    r"(?=.{1,253}\Z)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?"
)
_EXT_TOKEN = re.compile(r"[\x21-\x7e]{1,256}")
_TYPES = frozenset({"host", "srflx", "prflx", "relay"})
_TCP_TYPES = frozenset({"active", "passive", "so"})


def _number(text: str, field: str, what: str, lo: int, hi: int) -> int:
    if not _DIGITS.fullmatch(text) or not lo <= int(text) <= hi:
        raise InvalidMessage(field, f"{what} must be an integer in {lo}..{hi}")
    return int(text)


def _address(text: str, field: str, what: str) -> str:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        if not _HOSTNAME.fullmatch(text):
            raise InvalidMessage(field, f"{what} must be an IP address or a host name") from None
    return text


# The usual candidate in one scan: head, optional raddr/rport, extension pairs. `check_candidate` checks the numbers
# and names of a match itself; anything unusual goes through `parse_candidate`, which names the fault.
_USUAL_CANDIDATE = re.compile(
    r"candidate:[A-Za-z0-9+/]{1,32} ([0-9]{1,10}) (?i:udp|tcp) ([0-9]{1,10}) ([^ ]+) ([0-9]{1,10}) typ (?:host|srflx|prflx|relay)"
    r"(?: raddr ([^ ]+))?(?: rport ([0-9]{1,10}))?((?: [\x21-\x7e]{1,256} [\x21-\x7e]{1,256})*)"
)


def check_candidate(text: str, *, field: str = "candidate") -> None:
    """Refuse what `parse_candidate` refuses (with its reason), without building the parts when the text is usual."""
    match = _USUAL_CANDIDATE.fullmatch(text) if len(text) <= MAX_CANDIDATE_LENGTH else None
    if match is None or not _usual(*match.groups()):
        parse_candidate(text, field=field)


def _usual(component: str, priority: str, address: str, port: str, raddr: str | None, rport: str | None, tail: str) -> bool:
    if not (1 <= int(component) <= 256 and int(priority) <= 2**32 - 1 and int(port) <= 65535):
        return False
    if rport is not None and int(rport) > 65535:
        return False
    # A host name or a dotted IPv4 address passes the host name pattern; anything else (IPv6) takes the full parse.
    if not _HOSTNAME.fullmatch(address) or (raddr is not None and not _HOSTNAME.fullmatch(raddr)):
        return False
    words = tail.split(" ")[1:]
    for name, value in zip(words[::2], words[1::2], strict=True):
        if name in ("raddr", "rport") or (name == "tcptype" and value not in _TCP_TYPES):
            return False
    return True


def parse_candidate(text: str, *, field: str = "candidate") -> IceCandidate:
    """Parse ``candidate:<foundation> <component> <udp|tcp> <priority> <address>
    <port> typ <host|srflx|prflx|relay> [raddr <a>] [rport <p>] [<name> <value>]...``."""
    if len(text) > MAX_CANDIDATE_LENGTH:
        raise InvalidMessage(field, f"must be at most {MAX_CANDIDATE_LENGTH} characters")
    if not text.startswith("candidate:"):
        raise InvalidMessage(field, 'must start with "candidate:"')
    parts = text[len("candidate:") :].split(" ")
    if "" in parts:
        raise InvalidMessage(field, "parts must be separated by single spaces")
    if len(parts) < 8:
        raise InvalidMessage(field, "is missing parts (foundation ... typ <type>)")
    foundation, component, transport, priority, address, port, typ, cand_type = parts[:8]
    if not _FOUNDATION.fullmatch(foundation):
        raise InvalidMessage(field, "foundation must be 1-32 characters of [A-Za-z0-9+/]")
    if transport.lower() not in ("udp", "tcp"):
        raise InvalidMessage(field, "transport must be udp or tcp")
    if typ != "typ" or cand_type not in _TYPES:
        raise InvalidMessage(field, "must have typ host, srflx, prflx or relay")
    candidate = IceCandidate(
        foundation=foundation,
        component=_number(component, field, "component", 1, 256),
        transport=transport.lower(),
        priority=_number(priority, field, "priority", 0, 2**32 - 1),
        address=_address(address, field, "address"),
        port=_number(port, field, "port", 0, 65535),
        type=cand_type,
    )
    return _with_tail(candidate, parts[8:], field)


def _with_tail(candidate: IceCandidate, rest: list[str], field: str) -> IceCandidate:
    related_address: str | None = None
    related_port: int | None = None
    if rest[:1] == ["raddr"]:
        if len(rest) < 2:
            raise InvalidMessage(field, "raddr needs an address")
        related_address = _address(rest[1], field, "raddr")
        rest = rest[2:]
    if rest[:1] == ["rport"]:
        if len(rest) < 2:
            raise InvalidMessage(field, "rport needs a port")
        related_port = _number(rest[1], field, "rport", 0, 65535)
        rest = rest[2:]
    if len(rest) % 2:
        raise InvalidMessage(field, "extension attributes must come as name-value pairs")
    extensions = tuple(zip(rest[::2], rest[1::2], strict=True))
    for name, value in extensions:
        if not _EXT_TOKEN.fullmatch(name) or not _EXT_TOKEN.fullmatch(value):
            raise InvalidMessage(field, "extension attributes must be printable ASCII")
        if name == "tcptype" and value not in _TCP_TYPES:
            raise InvalidMessage(field, "tcptype must be active, passive or so")
        if name in ("raddr", "rport"):
            raise InvalidMessage(field, "raddr/rport must come right after the type, in that order")
    return replace(
        candidate,
        related_address=related_address,
        related_port=related_port,
        extensions=extensions,
    )
