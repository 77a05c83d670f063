"""A room's ``join`` carried in the websocket handshake, so that the welcome follows the upgrade at once.

A client that joins with a first message spends a round trip on it after the upgrade (300 ms on a 3G link at
a puskesmas). Instead it may offer two subprotocols: `PROTOCOL` and ``join.`` followed by its join message's
JSON text in base64url without padding (a subprotocol is an HTTP token: no JSON punctuation). The server reads the
join before it upgrades and answers with `PROTOCOL` selected; a client that sees it selected sends no join
frame. A server that does not know it selects nothing, and the client joins with a first message as before.
A browser may do the same (``new WebSocket(url, [PROTOCOL, value])``): it cannot set other headers.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable

from .errors import InvalidMessage

__all__ = ["PROTOCOL", "join_text", "offered"]

PROTOCOL = "psc119.join"
_PREFIX = "join."
# A join message is well under this; a header line has to fit aiohttp's 8190 bytes.
MAX_VALUE_CHARS = 4096


def offered(join_json: str) -> list[str]:
    """The subprotocols that carry ``join_json`` (a join message's JSON text)."""
    value = base64.urlsafe_b64encode(join_json.encode()).rstrip(b"=").decode("ascii")
    return [PROTOCOL, _PREFIX + value]


def join_text(protocols: Iterable[str]) -> str | None:
    """The join message's JSON text among the subprotocols a client offered (the values of its
    ``Sec-WebSocket-Protocol`` headers, each a comma-separated list); None if it offered `PROTOCOL` with no join
    or did not offer it. `InvalidMessage` (field ``join``) for a join that is not base64url-encoded UTF-8."""
    values = [v.strip() for header in protocols for v in header.split(",")]
    if PROTOCOL not in values:
        return None
    carried = [v[len(_PREFIX) :] for v in values if v.startswith(_PREFIX)]
    if not carried:
        return None
    if len(carried) > 1 or len(carried[0]) > MAX_VALUE_CHARS:
        raise InvalidMessage("join", "one join of at most 4096 characters in the handshake")
    try:
        return base64.b64decode(carried[0] + "=" * (-len(carried[0]) % 4), altchars=b"-_", validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise InvalidMessage("join", "the handshake's join must be base64url-encoded UTF-8 JSON") from None
