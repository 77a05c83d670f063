"""The aiortc peer's first connection is made while the room admits it: the requester's with its offer, sent as made
once the welcome allows it; another member's without one, and the first offer it gets is answered on it. A member
the welcome shows to be other than it prepared for lets its prepared connection go unused. Against the real
websocket relay of the pure Room, its welcome held back until the test lets it go. Loopback only."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription
from websockets.asyncio.server import ServerConnection

from signaling.media import SyntheticSource
from signaling.members import MemberRole
from signaling.peer import ConsultPeer

from .room_relay import RoomRelay, run_peers, stop_peers

LOOPBACK = ["127.0.0.1"]
ANI, BUDI = "dr-ani", "dr-budi"  # the requester, the specialist


class HeldRelay(RoomRelay):
    """A relay that reads each join (and so welcomes it) only once ``hold`` returns."""

    hold: Callable[[], Awaitable[object]]

    async def _handler(self, ws: ServerConnection) -> None:
        await self.hold()
        await super()._handler(ws)


@pytest.fixture
async def relay() -> AsyncIterator[HeldRelay]:
    async with HeldRelay("c-prepared-1", ANI, BUDI) as server:
        yield server


@pytest.fixture
def offers(monkeypatch: pytest.MonkeyPatch) -> list[RTCPeerConnection]:
    """Every connection that made an offer, in order."""
    made: list[RTCPeerConnection] = []
    create_offer = RTCPeerConnection.createOffer

    async def recorded(pc: RTCPeerConnection) -> RTCSessionDescription:
        made.append(pc)
        return await create_offer(pc)

    monkeypatch.setattr(RTCPeerConnection, "createOffer", recorded)
    return made


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> list[RTCPeerConnection]:
    """Every connection made, in order."""
    made: list[RTCPeerConnection] = []
    init = RTCPeerConnection.__init__

    def recorded(pc: RTCPeerConnection, *args: Any, **kwargs: Any) -> None:
        init(pc, *args, **kwargs)
        made.append(pc)

    monkeypatch.setattr(RTCPeerConnection, "__init__", recorded)
    return made


def make_peer(relay: RoomRelay, user: str, role: MemberRole | None = None) -> ConsultPeer:
    source = SyntheticSource(width=160, height=120, fps=30)
    return ConsultPeer(relay.url, relay.token_for(user), source=source, ice_host_addresses=LOOPBACK, role=role)


async def test_the_requester_offers_the_connection_it_made_while_joining(
    relay: HeldRelay, offers: list[RTCPeerConnection]
) -> None:
    welcome = asyncio.Event()
    relay.hold = welcome.wait
    ani, budi = make_peer(relay, ANI), make_peer(relay, BUDI)
    tasks = await run_peers(ani)
    try:
        await ani.wait_until(lambda: len(offers) == 1, 5)  # its offer, made before any welcome
        assert ani.welcome is None
        welcome.set()
        await ani.wait_until(lambda: ani.welcome is not None, 5)
        tasks += await run_peers(budi)  # told no role: it prepares too, and learns from its welcome it will not offer
        await ani.wait_until(lambda: ani.stats.video_from(BUDI) >= 5 and budi.stats.video_from(ANI) >= 5, 10)
        assert len(offers) == 2
        prepared_by_ani, prepared_by_budi = offers
        assert ani.peer_connections[BUDI] is prepared_by_ani  # sent as made: no second offer
        assert budi.peer_connections[ANI] is not prepared_by_budi  # it answered on a connection of its own
        await budi.wait_until(lambda: prepared_by_budi.connectionState == "closed", 5)
        assert ani.stats.negotiations == budi.stats.negotiations == 1
    finally:
        welcome.set()
        await stop_peers([ani, budi], tasks)


async def test_a_member_known_to_answer_prepares_the_connection_it_answers_on(
    relay: HeldRelay, offers: list[RTCPeerConnection], connections: list[RTCPeerConnection]
) -> None:
    welcome = asyncio.Event()
    relay.hold = welcome.wait
    ani, budi = make_peer(relay, ANI), make_peer(relay, BUDI, role=MemberRole.SPECIALIST)
    tasks = await run_peers(budi)
    try:
        await budi.wait_until(lambda: len(connections) == 1, 5)  # made before any welcome
        assert budi.welcome is None
        prepared = connections[0]
        assert {t.sender.track.kind for t in prepared.getTransceivers() if t.sender.track is not None} == {"audio", "video"}
        welcome.set()
        await budi.wait_until(lambda: budi.welcome is not None, 5)
        assert offers == []  # nothing offered: the requester offers
        tasks += await run_peers(ani)
        await ani.wait_until(lambda: ani.stats.video_from(BUDI) >= 5 and budi.stats.video_from(ANI) >= 5, 10)
        assert offers == [ani.peer_connections[BUDI]]
        assert budi.peer_connections[ANI] is prepared  # answered on the connection made while joining
        assert len(prepared.getTransceivers()) == 2  # the offer's two media, on the tracks it added
        assert len(connections) == 2
    finally:
        welcome.set()
        await stop_peers([ani, budi], tasks)
