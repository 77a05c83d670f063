"""Several text messages to one websocket in a single write, while its client keeps up.

aiohttp writes each message with a system call of its own (``send_str``), and under load the room relays several
messages to the same socket in one turn of the event loop: framing them here and handing the transport one buffer
costs one call for all of them. Only uncompressed sockets (room sockets never deflate) whose transport has nothing
buffered take this way; anything else (a socket closing, a client reading slower than the server writes, which
aiohttp's own send makes wait) is left to ``send_str``.
"""

from __future__ import annotations

import struct

from aiohttp import web

_TEXT = 0x81  # FIN + text opcode; a server's frames are not masked
_SHORT = struct.Struct("!BB")
_MEDIUM = struct.Struct("!BBH")
_LONG = struct.Struct("!BBQ")


def frame(text: str) -> bytes:
    """One unmasked websocket text frame holding ``text`` (RFC 6455 §5.2)."""
    payload = text.encode("utf-8")
    size = len(payload)
    if size < 126:
        return _SHORT.pack(_TEXT, size) + payload
    if size < 65536:
        return _MEDIUM.pack(_TEXT, 126, size) + payload
    return _LONG.pack(_TEXT, 127, size) + payload


def write_at_once(ws: web.WebSocketResponse, texts: list[str]) -> bool:
    """Write ``texts`` as frames in one transport write and say True, or write nothing and say False when they
    must go through ``send_str`` (the socket compresses, is closing, or its client has not read what was written)."""
    writer = ws._writer  # aiohttp's frame writer: its transport, and whether a close was sent
    if writer is None or writer.compress or writer._closing:
        return False
    transport = writer.transport
    if transport.is_closing() or transport.get_write_buffer_size():
        return False
    transport.write(b"".join(map(frame, texts)))
    return True
