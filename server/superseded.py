"""Whether a socket already holds a newer frame of the same kind: such a frame is superseded before it is handled.

Only the newest GPS fix of a unit matters. When the server falls behind (more fixes than it can take in), the
frames a phone sent meanwhile wait in its socket's buffer; handling each of them in turn would make every
position the operators see as old as that backlog. A fix with a newer one waiting behind it is dropped
unanswered instead, before it is even decoded (counted in ``psc119_gps_fixes_superseded``): the more the server
falls behind, the less each waiting fix costs, and the positions stay fresh. It still counts against the
socket's rate limit.

aiohttp offers no public look at the frames a websocket has read but not yet handed out: this reads its
reader's ``_buffer`` (a deque of ``(message, size)``); tests/server/test_gps_ingest.py guards it.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import WSMessage, WSMsgType, web

_KIND = re.compile(r'"type"\s*:\s*"([a-z_]+)"')


def replaced_by_waiting(ws: web.WebSocketResponse, frame: WSMessage, kind: str) -> bool:
    """Whether ``frame`` is of type ``kind`` and another of that type waits behind it in ``ws``'s buffer.

    Told from the frames' text, before decoding (that is the cost saved): a frame is of a kind when every
    ``"type": ...`` in it names that kind. A malformed frame taken so is dropped like a sound one: it changes
    nothing, and the newer frame behind it is answered as usual."""
    if not _of_kind(frame, kind):
        return False
    buffer: Any = getattr(getattr(ws, "_reader", None), "_buffer", None)
    return bool(buffer) and any(_of_kind(waiting, kind) for waiting, _size in reversed(buffer))


def _of_kind(frame: WSMessage, kind: str) -> bool:
    if frame.type is not WSMsgType.TEXT or not isinstance(frame.data, str):
        return False
    return set(_KIND.findall(frame.data)) == {kind}
