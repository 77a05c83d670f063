"""The websocket upgrade, keeping nothing of the handshake that an open socket no longer needs.

Thousands of idle sockets each keep what their connection holds for as long as it is open, so an upgraded
socket lets go of what served only the handshake: the 101's headers, the HTTP parser; and a socket that deflates
its messages keeps no compressor between them.

Its open life runs after the handler has returned (`LiveSocket`): every middleware has done its part by then
(the upgrade was authorised, checked, timed and answered), and none of their frames stays on the stack of
each idle socket. aiohttp closes a returned websocket by awaiting its ``write_eof``: the life runs there, under
the request's id, and an error it does not handle is logged and closes the socket with 1011 (no HTTP answer
is possible after the 101), with 1013 when the database is unreachable; a client gone mid-write is no error.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable

from aiohttp import ClientConnectionResetError, WSCloseCode, WSMsgType, web

from server.errors import database_unreachable
from server.keys import METRICS
from server.logs import request_id

log = logging.getLogger(__name__)

# The messages after which a socket reads no more, as ``async for`` over aiohttp's websocket ends on them. An open
# socket's life reads with ``while (msg := await ws.receive()).type not in ENDED``: ``async for`` waits through a
# coroutine of its own (``__anext__``), one more frame every idle socket keeps.
ENDED = frozenset({WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED})


def _late_attributes() -> tuple[str, ...]:
    """The attributes aiohttp's websocket and response set after their ``__init__``: class-level defaults until
    a socket is prepared, pinged, read or closed."""
    own = (web.WebSocketResponse, web.StreamResponse)
    return tuple(dict.fromkeys(
        name for cls in own for name, value in vars(cls).items()
        if not name.startswith("__") and (value is None or isinstance(value, (bool, int, float)))
    ))  # fmt: skip


_LATE = _late_attributes()


class LiveSocket(web.WebSocketResponse):
    """A websocket whose life, given by `live`, runs once its handler (and the middlewares) returned it."""

    # Slots, not instance attributes: CPython shares one key table among a class's instance dicts, of at most 30
    # keys, and a socket's whole life (prepared, pinged, read, closed) sets more than that, counting ours and
    # aiohttp's late ones. Past that, each socket holds a dict of its own, ~1 KiB, from its first ping until
    # it closes. In slots, the attributes set late stay out of the dict, and the dict stays shared.
    __slots__ = ("_life", "_request_id", *_LATE)

    def __init__(self, **kwargs: object) -> None:
        for name in _LATE:  # a slot hides the class default it shadows
            setattr(self, name, getattr(web.WebSocketResponse, name))
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._life: Callable[[], Awaitable[None]] | None = None
        self._request_id = request_id.get()

    def live(self, life: Callable[[], Awaitable[None]]) -> LiveSocket:
        """Run ``life`` (the socket's messages until it closes) after the handler; returns the socket to return."""
        self._life = life
        return self

    async def send_str(self, data: str, compress: int | None = None) -> None:
        """With permessage-deflate, each message is deflated by a compressor of its own, as with
        ``server_no_context_takeover`` (a client's inflater reads it either way): a deflate context is ~260 KiB,
        and an idle socket would otherwise keep its last one for as long as it is open."""
        await super().send_str(data, compress=compress or self.compress or None)

    async def write_eof(self) -> None:  # type: ignore[override]
        life, self._life = self._life, None
        if life is not None:
            # The request's own task, its context a copy of its own: set for the rest of it, no token to keep.
            request_id.set(self._request_id)
            running = life()
            del life  # what the life needs its frame holds; the callable that made it (a bound method) is let go
            try:
                await running
            except Exception as exc:
                await self._failed(exc)
        await super().write_eof()

    async def _failed(self, exc: Exception) -> None:
        """What the error middleware does for a request, for an open socket (no HTTP answer after the 101)."""
        request = self._req
        transport = request.transport if request is not None else None
        if isinstance(exc, ClientConnectionResetError) or transport is None or transport.is_closing():
            # The client went away while the socket wrote to it (a pong, a close): nobody is left to answer.
            log.debug("a websocket's client went away (%s)", type(exc).__name__)
            return
        if database_unreachable(exc):
            log.warning("closed a websocket: the database is unreachable (%s)", type(exc).__name__)
            if isinstance(request, web.Request):
                request.app[METRICS].database_error("request", unreachable=True)
            code, reason = WSCloseCode.TRY_AGAIN_LATER, b"database unreachable; try again"
        else:
            log.exception("unhandled error on a websocket")
            code, reason = WSCloseCode.INTERNAL_ERROR, b"internal error"
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self.close(code=code, message=reason)


async def upgrade(ws: web.WebSocketResponse, request: web.Request) -> None:
    """Send the 101 (with the security headers every response carries), then let go of the handshake: the
    response's headers (~1 KiB) and the connection's HTTP parser.

    The request's head stays as it came: aiohttp's connection handler keeps the parsed head in its own frame
    while the request (this whole socket) runs, so a copy without the headers would only add one."""
    await ws.prepare(request)
    ws.headers.clear()
    forget = getattr(request.protocol, "forget_parser", None)
    if forget is not None:  # the server's own connection handler (a test's app may run on aiohttp's)
        forget()
