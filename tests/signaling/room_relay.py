"""A small, real signaling relay around the pure `Room`, for testing the aiortc peer
without the whole app (and helpers to run peers): a `websockets` server on 127.0.0.1 speaking the room's
wire protocol (join, welcome and backlog, relay, presence, close codes)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Self

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from signaling.errors import NotAMember, RoomClosed, SignalingError, TokenRejected
from signaling.ids import ConsultId, UserId
from signaling.messages import Join, encode, error_reply, parse_client
from signaling.peer import ConsultPeer
from signaling.room import Delivery, Room
from signaling.tokens import issue_join_token

CLOSE_CODES = {TokenRejected: 4401, NotAMember: 4403, RoomClosed: 4409}


def _now() -> datetime:
    return datetime.now(UTC)


class RoomRelay:
    def __init__(self, consult: str, requester: str, specialist: str, recorder: str | None = None) -> None:
        self.consult = ConsultId(consult)
        self.room = Room(
            self.consult, UserId(requester), UserId(specialist), recorder=None if recorder is None else UserId(recorder)
        )
        self.tokens: dict[str, UserId] = {}
        self._sockets: dict[tuple[UserId, int], ServerConnection] = {}
        self._server: Server | None = None
        self.url = ""

    def token_for(self, user: str) -> str:
        issued = issue_join_token(self.consult, UserId(user), _now())
        self.room.add_grant(issued.grant)
        self.tokens[issued.token] = UserId(user)
        return issued.token

    async def start(self) -> None:
        self._server = await serve(self._handler, "127.0.0.1", 0, compression=None)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}/ws/consults/{self.consult}"

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _deliver(self, deliveries: Iterable[Delivery]) -> None:
        for delivery in deliveries:
            ws = self._sockets.get((delivery.recipient, delivery.generation))
            if ws is not None:
                try:
                    await ws.send(encode(delivery.message))
                except ConnectionClosed:
                    pass

    async def _handler(self, ws: ServerConnection) -> None:
        join = parse_client(await ws.recv())
        if not isinstance(join, Join):
            await ws.close(4400, "join first")
            return
        user = self.tokens.get(join.token)
        try:
            if user is None:
                raise TokenRejected("token not recognised")
            result = self.room.join(user, join, _now())
        except SignalingError as exc:
            await ws.send(encode(error_reply(exc)))
            await ws.close(CLOSE_CODES.get(type(exc), 4400), exc.reason[:100])
            return
        if result.replaced is not None:
            old = self._sockets.pop((user, result.replaced), None)
            if old is not None:
                await old.close(4000, "replaced")
        self._sockets[(user, result.generation)] = ws
        await ws.send(encode(result.welcome))
        for message in result.backlog:
            await ws.send(encode(message))
        await self._deliver(result.deliveries)
        try:
            async for raw in ws:
                try:
                    message = parse_client(raw)
                    if isinstance(message, Join):
                        continue
                    deliveries = self.room.route(user, result.generation, message, _now())  # type: ignore[arg-type]
                except SignalingError as exc:
                    await ws.send(encode(error_reply(exc)))
                    continue
                await self._deliver(deliveries)
        except ConnectionClosed:
            pass
        finally:
            self._sockets.pop((user, result.generation), None)
            left = self.room.leave(user, result.generation, _now())
            if left is not None:
                await self._deliver(left.deliveries)


async def run_peers(*peers: ConsultPeer) -> list[asyncio.Task[None]]:
    return [asyncio.create_task(peer.run()) for peer in peers]


async def stop_peers(peers: list[ConsultPeer], tasks: list[asyncio.Task[None]]) -> None:
    for peer in peers:
        await peer.stop()
    await asyncio.wait_for(asyncio.gather(*tasks), 10)
