"""Guards on the server's connections: deadlines for slow requests and a cap per peer address.

aiohttp reads a request without a deadline: a client that sends half a request head,
or a body that never completes, holds its connection (and a file descriptor) for as
long as it likes, and enough of them starve everyone. `GuardedRunner` serves the app
through `GuardedHandler`, which

- closes a connection whose request head is not complete within
  ``limits.header_timeout_s`` of the connection opening or of the head's first byte;
- closes a connection whose request body receives nothing for ``limits.body_timeout_s``
  (a handler waiting for that body gets `RequestTimeout`, not a broken connection);
- closes at once a new connection from an address that already holds
  ``limits.max_connections_per_address``.

An idle keep-alive connection closes after ``limits.idle_timeout_s`` (aiohttp's own
keep-alive timer); websockets, once upgraded, are left to their heartbeats. The
address is the transport's peer. Behind a reverse proxy every client arrives from the
proxy's address, so ``server.trusted_proxies`` are not capped (the proxy caps its own
clients; the shipped nginx site does).

The handler reads three attributes of aiohttp's `RequestHandler` (``_request_count``,
``_messages``, ``_upgraded``: what it has parsed); aiohttp offers no public hook for
the progress of a request being read. tests/server/test_slow_clients.py guards them.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from typing import Any, cast

from aiohttp import web
from aiohttp.streams import StreamReader
from aiohttp.web_log import AccessLogger
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_server import Server

from server.client_address import Network, is_trusted
from server.config import LimitSettings
from server.errors import RequestTimeout

log = logging.getLogger(__name__)

NO_MESSAGES: tuple[()] = ()  # an upgraded connection's parsed requests: none, ever


class ConnectionGuard:
    """The settings, and the open connections per peer address, of one server."""

    def __init__(self, limits: LimitSettings, trusted_proxies: tuple[Network, ...] = ()) -> None:
        self.limits = limits
        self.trusted_proxies = trusted_proxies
        self.open: collections.Counter[str] = collections.Counter()
        self.sockets_closed = 0  # websockets closed so far: the collector's estimate of their garbage (`server.gc_policy`)

    def admit(self, address: str) -> bool:
        if self.open[address] >= self.limits.max_connections_per_address and not is_trusted(address, self.trusted_proxies):
            return False
        self.open[address] += 1
        return True

    def release(self, address: str) -> None:
        self.open[address] -= 1
        if self.open[address] <= 0:
            del self.open[address]


class GuardedHandler(RequestHandler):
    """aiohttp's connection handler, with the deadlines and the per-address cap of a `ConnectionGuard`."""

    __slots__ = ("_guard", "_clock", "_address", "_head_since", "_rx_at", "_body", "_timer")

    def __init__(self, manager: Server, *, loop: asyncio.AbstractEventLoop, guard: ConnectionGuard, **kwargs: Any) -> None:
        super().__init__(manager, loop=loop, **kwargs)
        self._guard, self._clock = guard, loop
        self._address: str | None = None  # None: refused, or not yet admitted
        self._head_since: float | None = None
        self._rx_at = 0.0
        self._body: StreamReader | None = None
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        if not self._guard.admit(address):
            log.warning(
                "refused a connection from %s: it holds %d already (limits.max_connections_per_address)",
                address, self._guard.limits.max_connections_per_address,
            )
            cast(asyncio.Transport, transport).abort()  # never handed to aiohttp: connection_lost below has nothing to undo
            return
        self._address = address
        super().connection_made(transport)
        self._head_since = self._clock.time()
        self._arm()

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._address is None:
            return
        self._guard.release(self._address)
        if self._upgraded:
            self._guard.sockets_closed += 1
        self._address = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._upgraded:  # a websocket's frames: no deadline to keep (and thousands of phones send them)
            super().data_received(data)
            return
        parsed, in_body = self._request_count, self._body_pending()
        super().data_received(data)
        if self.transport is None or not data:  # aiohttp feeds b"" itself to re-parse what it buffered
            return
        self._rx_at = now = self._clock.time()
        if self._request_count != parsed:  # a request head is complete; its body may follow
            self._head_since = None
            self._body = self._messages[-1][1] if self._messages else None
        elif not in_body and self._head_since is None and not self._upgraded:
            self._head_since = now  # the first bytes of the next request head
        self._arm()

    def forget_parser(self) -> None:
        """Upgraded to a websocket, the connection parses no more HTTP: drop the parser, its queue of parsed requests
        (an empty deque is ~760 bytes; nothing is queued after the upgrade, and an empty tuple refuses any append
        rather than hold it) and the last request's body (`server.upgraded`; aiohttp's ``_parser``, ``_messages`` and
        ``_payload_parser``, guarded by tests/server/test_live_socket.py and test_upgraded.py), and the head's deadline, which would
        otherwise stay scheduled (a handle, its callback and a context) until ``limits.header_timeout_s`` after the
        head, only to find nothing to do."""
        if self._upgraded and self._payload_parser is not None:
            self._parser = None
            if not self._messages:  # always so: the parser stops at an upgrade's head
                self._messages = NO_MESSAGES  # type: ignore[assignment]
            self._body = None
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    def _body_pending(self) -> bool:
        return self._body is not None and not self._body.is_eof()

    def _deadline(self) -> float | None:
        if self._upgraded:  # a websocket: its heartbeat watches it
            return None
        if self._head_since is not None:
            return self._head_since + self._guard.limits.header_timeout_s
        if self._body_pending():
            return self._rx_at + self._guard.limits.body_timeout_s
        return None

    def _arm(self) -> None:
        deadline = self._deadline()
        if self._timer is None and deadline is not None:
            self._timer = self._clock.call_at(deadline, self._expire)

    def _expire(self) -> None:
        self._timer = None
        deadline = self._deadline()
        if self.transport is None or deadline is None:
            return
        if self._clock.time() < deadline:  # bytes came meanwhile
            self._arm()
            return
        limits = self._guard.limits
        if self._head_since is not None:
            log.warning("closed a connection from %s: no complete request head within %g s (limits.header_timeout_s)",
                        self._address, limits.header_timeout_s)
        else:
            log.warning("closed a connection from %s: its request body stalled for %g s (limits.body_timeout_s)",
                        self._address, limits.body_timeout_s)
            assert self._body is not None  # _deadline() saw it pending
            self._body.set_exception(RequestTimeout(f"the request body stalled for {limits.body_timeout_s:g} s"))
        self.force_close()


class GuardedServer(Server):
    """aiohttp's low-level server, making `GuardedHandler`s."""

    def __init__(self, plain: Server, guard: ConnectionGuard, handler_args: dict[str, Any]) -> None:
        loop = asyncio.get_running_loop()
        super().__init__(
            plain.request_handler, request_factory=plain.request_factory,
            handler_cancellation=plain.handler_cancellation, loop=loop, **handler_args,
        )
        self._guard_loop, self._guard, self._handler_args = loop, guard, handler_args

    def __call__(self) -> RequestHandler:
        return GuardedHandler(self, loop=self._guard_loop, guard=self._guard, **self._handler_args)


class GuardedRunner(web.AppRunner):
    """An `AppRunner` whose connections are guarded by the ``[limits]`` settings."""

    def __init__(
        self, app: web.Application, limits: LimitSettings, *, shutdown_timeout: float, trusted_proxies: tuple[Network, ...] = (),
    ) -> None:
        self._handler_args: dict[str, Any] = {"keepalive_timeout": limits.idle_timeout_s, "access_log_class": AccessLogger}
        super().__init__(app, handle_signals=False, shutdown_timeout=shutdown_timeout, **self._handler_args)
        self.guard = ConnectionGuard(limits, trusted_proxies)

    async def _make_server(self) -> Server:
        return GuardedServer(await super()._make_server(), self.guard, self._handler_args)
