"""The text a relayed message reaches its recipient as: the sender's own frame, with the envelope the room set.

`messages.encode` of a stamped message builds its text anew from the parsed message. The frame the sender wrote
already says the same once parsing accepted it, but for the envelope (``"to"``, ``"from"``, ``"consult"``), which
the room decides: that frame with the envelope appended is read as the same message (`messages.parse` of either
gives equal messages), for less than a third of the work. Where the frame says something `encode` would not, it is
encoded anew as before: a ``"from"`` of the sender's (the room's must replace it, never stand beside it), a null
`encode` leaves out (``"usernameFragment": null``, a ``"candidate": null`` read as ``""``), or an envelope value the
room changed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Final, get_args

from .messages import Message, RelayMessage, encode

__all__ = ["forwarded"]

# The nulls `messages.encode` writes as null; it leaves out any other.
_NULLS_KEPT: Final = frozenset({"sdpMid", "sdpMLineIndex"})
_JSON_SPACE: Final = " \t\n\r"
_RELAYED: Final = get_args(RelayMessage)
_string = json.JSONEncoder(ensure_ascii=False).encode


def forwarded(message: Message, frame: str | bytes, data: Mapping[str, object]) -> str:
    """The text of ``message``, stamped by the room from the client's ``frame`` (which decoded to ``data``)."""
    if not isinstance(message, _RELAYED) or not isinstance(frame, str) or "from" in data:
        return encode(message)
    envelope = []
    for key, value in (("to", message.to), ("from", message.sender), ("consult", message.consult)):
        if key in data:
            if data[key] != value:
                return encode(message)
        elif value is not None:
            envelope.append(f',"{key}":{_string(value)}')
    for key, value in data.items():
        if value is None and key not in _NULLS_KEPT:
            return encode(message)
    body = frame.rstrip(_JSON_SPACE)
    return body[:-1] + "".join(envelope) + "}"
