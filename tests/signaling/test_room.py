from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from signaling.consult import Consult
from signaling.errors import (
    InvalidMessage,
    InvalidValue,
    NotAMember,
    NotJoined,
    NotOfferer,
    RecordingNotAllowed,
    RoomClosed,
    TokenRejected,
    WrongRoom,
)
from signaling.ids import ConsultId, UserId
from signaling.members import MemberRole, PeerKind
from signaling.messages import (
    Answer,
    Bye,
    Candidate,
    Chat,
    IceRestart,
    Join,
    Offer,
    PeerInfo,
    Presence,
    Recording,
)
from signaling.room import Delivery, JoinResult, Room
from signaling.tokens import issue_join_token
from signaling.turn import IceServer

T0 = datetime(2025, 3, 3, 2, 0, tzinfo=UTC)
SEC = timedelta(seconds=1)
C1, C2 = ConsultId("c-1"), ConsultId("c-2")
ANI = UserId("dr-ani-pkm")  # requester, puskesmas
BUDI = UserId("dr-budi-sp")  # specialist
REC = UserId("svc-recorder")
EVE = UserId("dr-eve")  # not a member
BROWSER, AIORTC = PeerKind.BROWSER, PeerKind.AIORTC


def cand(n: int) -> Candidate:
    return Candidate(f"candidate:{n} 1 udp 2122260223 192.168.1.{n} 5000{n} typ host", sdp_mid="0")


@dataclass
class World:
    room: Room
    tokens: dict[UserId, str]

    def join(
        self,
        user: UserId,
        kind: PeerKind = BROWSER,
        at: datetime = T0,
        consent: bool | None = None,
    ) -> JoinResult:
        return self.room.join(user, Join(self.tokens[user], kind, consent), at)


@pytest.fixture
def world() -> World:
    room = Room(C1, ANI, BUDI, recorder=REC)
    tokens = {}
    for user in (ANI, BUDI, REC):
        issued = issue_join_token(C1, user, T0, timedelta(minutes=30))
        room.add_grant(issued.grant)
        tokens[user] = issued.token
    return World(room, tokens)


def by_recipient(deliveries: list[Delivery] | tuple[Delivery, ...]) -> dict[UserId, Delivery]:
    return {d.recipient: d for d in deliveries}


# --- membership and tokens ------------------------------------------------------------


def test_members_and_roles(world: World) -> None:
    assert dict(world.room.members) == {
        ANI: MemberRole.REQUESTER, BUDI: MemberRole.SPECIALIST, REC: MemberRole.RECORDER,
    }  # fmt: skip
    with pytest.raises(NotAMember):
        world.room.role_of(EVE)


def test_non_member_is_refused(world: World) -> None:
    eve_token = issue_join_token(C1, EVE, T0)
    with pytest.raises(NotAMember):
        world.room.add_grant(eve_token.grant)
    with pytest.raises(NotAMember):
        world.room.join(EVE, Join(eve_token.token, BROWSER), T0)
    assert world.room.present == {}


def test_token_for_another_consult_is_refused(world: World) -> None:
    other = issue_join_token(C2, ANI, T0)
    with pytest.raises(WrongRoom):
        world.room.add_grant(other.grant)
    with pytest.raises(TokenRejected):
        world.room.join(ANI, Join(other.token, BROWSER), T0)


def test_token_of_another_member_is_refused(world: World) -> None:
    with pytest.raises(TokenRejected):
        world.room.join(ANI, Join(world.tokens[BUDI], BROWSER), T0)


def test_expired_token_is_refused(world: World) -> None:
    with pytest.raises(TokenRejected, match="expired"):
        world.join(ANI, at=T0 + timedelta(minutes=30))
    world.join(ANI, at=T0 + timedelta(minutes=29))


def test_member_without_a_grant_is_refused() -> None:
    room = Room(C1, ANI, BUDI)
    with pytest.raises(TokenRejected, match="no join token"):
        room.join(ANI, Join(issue_join_token(C1, ANI, T0).token, BROWSER), T0)


def test_newer_grant_replaces_the_older(world: World) -> None:
    newer = issue_join_token(C1, ANI, T0)
    world.room.add_grant(newer.grant)
    with pytest.raises(TokenRejected):
        world.join(ANI)
    assert world.room.join(ANI, Join(newer.token, BROWSER), T0).generation == 1


def test_join_naming_another_consult_is_refused(world: World) -> None:
    with pytest.raises(WrongRoom):
        world.room.join(ANI, Join(world.tokens[ANI], BROWSER, consult=C2), T0)


def test_room_roles_cannot_be_reassigned(world: World) -> None:
    with pytest.raises(InvalidValue):
        world.room.set_specialist(EVE)
    with pytest.raises(InvalidValue):
        Room(C1, ANI, ANI)


# --- presence, welcome, roles ---------------------------------------------------------


def test_welcome_and_presence_for_two_browsers(world: World) -> None:
    servers = (IceServer(("stun:127.0.0.1:3478",)),)
    first = world.room.join(ANI, Join(world.tokens[ANI], BROWSER), T0, ice_servers=servers)
    assert first.generation == 1 and first.replaced is None
    assert first.welcome.peers == ()
    assert first.welcome.ice_servers == servers
    assert (first.welcome.role, first.welcome.user) == (MemberRole.REQUESTER, ANI)
    assert first.deliveries == () and not first.session_started

    second = world.join(BUDI, at=T0 + SEC)
    # the specialist is impolite and does not offer; the requester does
    assert second.welcome.peers == (
        PeerInfo(ANI, MemberRole.REQUESTER, BROWSER, 1, polite=False, offerer=False),
    )
    assert second.deliveries == (
        Delivery(ANI, 1, Presence(C1, BUDI, MemberRole.SPECIALIST, "joined", 1,
                                  kind=BROWSER, polite=True, offerer=True)),
    )  # fmt: skip
    assert second.session_started


def test_aiortc_peer_never_offers_to_a_browser(world: World) -> None:
    world.join(ANI, kind=AIORTC)
    spec = world.join(BUDI, kind=BROWSER)
    # the browser specialist is polite and the offerer, though it ranks lower
    assert spec.welcome.peers[0].polite and spec.welcome.peers[0].offerer
    presence = spec.deliveries[0].message
    assert isinstance(presence, Presence)
    assert (presence.polite, presence.offerer) == (False, False)


def test_two_aiortc_peers_get_one_named_offerer(world: World) -> None:
    world.join(ANI, kind=AIORTC)
    spec = world.join(BUDI, kind=AIORTC)
    assert (spec.welcome.peers[0].polite, spec.welcome.peers[0].offerer) == (False, False)
    presence = spec.deliveries[0].message
    assert isinstance(presence, Presence)
    assert (presence.polite, presence.offerer) == (False, True)


def test_roles_are_stable_across_reconnects(world: World) -> None:
    world.join(ANI)
    world.join(BUDI)
    again = world.join(ANI, at=T0 + 5 * SEC)
    assert (again.welcome.peers[0].polite, again.welcome.peers[0].offerer) == (True, True)
    assert not again.session_started  # only the first time both are here


def test_reconnect_replaces_the_older_connection(world: World) -> None:
    world.join(ANI)
    world.join(BUDI)
    rejoin = world.join(ANI, at=T0 + SEC)
    assert (rejoin.generation, rejoin.replaced) == (2, 1)
    assert by_recipient(rejoin.deliveries)[BUDI].message == Presence(
        C1, ANI, MemberRole.REQUESTER, "joined", 2, kind=BROWSER, polite=False, offerer=False
    )
    # the old socket closing afterwards changes nothing
    assert world.room.leave(ANI, 1, T0 + 2 * SEC) is None
    assert world.room.present[ANI].generation == 2
    with pytest.raises(NotJoined, match="replaced"):
        world.room.route(ANI, 1, Chat("dari koneksi lama", id="m1"), T0)
    left = world.room.leave(ANI, 2, T0 + 3 * SEC)
    assert left is not None
    assert left.deliveries == (
        Delivery(BUDI, 1, Presence(C1, ANI, MemberRole.REQUESTER, "left", 2)),
    )
    assert ANI not in world.room.present


def test_a_dropped_socket_is_reconnecting_until_the_grace_ends_then_left(world: World) -> None:
    world.join(ANI)
    world.join(BUDI)
    away = world.room.leave(ANI, 1, T0 + SEC, away=True)
    assert away is not None
    assert away.deliveries == (Delivery(BUDI, 1, Presence(C1, ANI, MemberRole.REQUESTER, "reconnecting", 1)),)
    gone = world.room.gone(ANI, 1, T0 + 21 * SEC)
    assert gone is not None
    assert gone.deliveries == (Delivery(BUDI, 1, Presence(C1, ANI, MemberRole.REQUESTER, "left", 1)),)


def test_a_member_back_within_the_grace_never_left(world: World) -> None:
    world.join(ANI)
    world.join(BUDI)
    world.room.leave(ANI, 1, T0 + SEC, away=True)
    world.join(ANI, at=T0 + 2 * SEC)
    assert world.room.gone(ANI, 1, T0 + 21 * SEC) is None
    assert ANI in world.room.present


def test_a_rejoin_that_keeps_its_media_says_so_to_the_kept_member_only(world: World) -> None:
    world.join(ANI, AIORTC, consent=True)
    world.join(BUDI, AIORTC, consent=True)
    world.join(REC, AIORTC)
    world.room.leave(ANI, 1, T0 + SEC, away=True)
    rejoin = world.room.join(ANI, Join(world.tokens[ANI], AIORTC, keep=(BUDI,)), T0 + 2 * SEC)
    presence = {d.recipient: d.message for d in rejoin.deliveries if isinstance(d.message, Presence)}
    assert presence[BUDI].resumed is True and presence[REC].resumed is None
    # Budi's welcome after his own rejoin shows that Ani's connection kept him.
    world.room.leave(BUDI, 1, T0 + 3 * SEC, away=True)
    again = world.room.join(BUDI, Join(world.tokens[BUDI], AIORTC, keep=(ANI,)), T0 + 4 * SEC)
    assert {p.user: p.resumed for p in again.welcome.peers} == {ANI: True, REC: False}


# --- relay ----------------------------------------------------------------------------


def test_relay_stamps_the_sender_and_overwrites_a_forged_from(world: World, sdp_offer: str) -> None:
    world.join(ANI)
    world.join(BUDI)
    forged = Offer(sdp_offer, sender=BUDI)  # ANI claims to be BUDI
    deliveries = world.room.route(ANI, 1, forged, T0)
    assert deliveries == [
        Delivery(BUDI, 1, Offer(sdp_offer, sender=ANI, to=BUDI, consult=C1)),
    ]
    answer = world.room.route(BUDI, 1, Answer(sdp_offer), T0)
    assert answer == [Delivery(ANI, 1, Answer(sdp_offer, sender=BUDI, to=ANI, consult=C1))]


def test_chat_and_bye_go_to_every_other_member(world: World) -> None:
    world.join(ANI, consent=True)
    world.join(BUDI, consent=True)
    world.join(REC, kind=AIORTC)
    chat = world.room.route(BUDI, 1, Chat("Halo", id="m1"), T0)
    assert [(d.recipient, d.message.to) for d in chat] == [(ANI, ANI), (REC, REC)]  # type: ignore[union-attr]
    assert all(d.message.sender == BUDI for d in chat)  # type: ignore[union-attr]
    bye = world.room.route(ANI, 1, Bye("selesai"), T0)
    assert [d.recipient for d in bye] == [BUDI, REC]


def test_message_for_another_room_is_refused(world: World) -> None:
    world.join(ANI)
    with pytest.raises(WrongRoom):
        world.room.route(ANI, 1, Chat("salah kamar", id="m1", consult=C2), T0)
    assert world.room.route(ANI, 1, Chat("benar", id="m1", consult=C1), T0) == []


def test_addressing_rules(world: World) -> None:
    world.join(ANI)
    with pytest.raises(NotAMember) as info:
        world.room.route(ANI, 1, Chat("hai", id="m1", to=EVE), T0)
    assert info.value.field == "to"
    with pytest.raises(InvalidMessage) as bad:
        world.room.route(ANI, 1, Chat("hai", id="m1", to=ANI), T0)
    assert bad.value.field == "to"
    with pytest.raises(NotJoined):
        world.room.route(BUDI, 1, Chat("belum join", id="m1"), T0)
    with pytest.raises(NotAMember):
        world.room.route(EVE, 1, Chat("penyusup", id="m1"), T0)
    with pytest.raises(InvalidMessage) as not_relayed:
        world.room.route(ANI, 1, Join(world.tokens[ANI], BROWSER), T0)  # type: ignore[arg-type]
    assert not_relayed.value.field == "type"


def test_negotiation_needs_another_doctor() -> None:
    room = Room(C1, ANI)
    issued = issue_join_token(C1, ANI, T0)
    room.add_grant(issued.grant)
    room.join(ANI, Join(issued.token, BROWSER), T0)
    with pytest.raises(InvalidMessage) as info:
        room.route(ANI, 1, IceRestart(), T0)
    assert info.value.field == "to"
    room.set_specialist(BUDI)
    room.route(ANI, 1, IceRestart(), T0)
    assert room.queued(BUDI) == 1


def test_aiortc_receives_offers_only_from_its_offerer(world: World, sdp_offer: str) -> None:
    world.join(ANI, kind=AIORTC)
    world.join(BUDI, kind=BROWSER)
    with pytest.raises(NotOfferer):
        world.room.route(ANI, 1, Offer(sdp_offer), T0)  # aiortc -> browser: not allowed
    assert len(world.room.route(BUDI, 1, Offer(sdp_offer), T0)) == 1  # browser -> aiortc
    assert len(world.room.route(ANI, 1, IceRestart(), T0)) == 1  # aiortc asks instead


def test_between_two_aiortc_peers_only_the_named_offerer_offers(world: World, sdp_offer: str) -> None:
    world.join(ANI, kind=AIORTC)
    world.join(BUDI, kind=AIORTC)
    with pytest.raises(NotOfferer):
        world.room.route(BUDI, 1, Offer(sdp_offer), T0)
    assert len(world.room.route(ANI, 1, Offer(sdp_offer), T0)) == 1


# --- outbox ---------------------------------------------------------------------------


def test_messages_for_an_absent_member_wait_in_order(world: World) -> None:
    world.join(ANI)
    world.join(BUDI)
    world.room.leave(BUDI, 1, T0 + SEC)
    assert world.room.route(ANI, 1, Chat("satu", id="m1"), T0 + 2 * SEC) == []
    assert world.room.route(ANI, 1, Chat("dua", id="m1"), T0 + 3 * SEC) == []
    assert world.room.queued(BUDI) == 2
    back = world.join(BUDI, at=T0 + 10 * SEC)
    assert back.backlog == (
        Chat("satu", id="m1", sender=ANI, to=BUDI, consult=C1),
        Chat("dua", id="m1", sender=ANI, to=BUDI, consult=C1),
    )
    assert world.room.queued(BUDI) == 0
    assert world.join(BUDI, at=T0 + 11 * SEC).backlog == ()


def test_a_rejoin_drops_queued_negotiation_from_and_for_the_old_connection(world: World, sdp_offer: str) -> None:
    world.join(ANI)
    world.join(BUDI)
    world.room.leave(BUDI, 1, T0 + SEC)
    world.room.route(ANI, 1, cand(1), T0 + 2 * SEC)  # for Budi's old connection
    world.room.route(ANI, 1, Chat("halo", id="m1"), T0 + 2 * SEC)
    world.room.leave(ANI, 1, T0 + 3 * SEC)
    back = world.join(BUDI, at=T0 + 4 * SEC)
    assert [type(m) for m in back.backlog] == [Chat]
    world.room.route(BUDI, back.generation, Offer(sdp_offer), T0 + 5 * SEC)  # queued for Ani's old connection
    world.room.route(BUDI, back.generation, Chat("masih di sini?", id="m1"), T0 + 5 * SEC)
    assert world.room.queued(ANI) == 2
    again = world.join(ANI, at=T0 + 6 * SEC)
    assert [m.text for m in again.backlog if isinstance(m, Chat)] == ["masih di sini?"]
    assert not any(isinstance(m, Offer) for m in again.backlog)


def test_outbox_ages_out_after_30_seconds(world: World) -> None:
    world.join(ANI)
    world.room.route(ANI, 1, Chat("lama", id="m1"), T0)
    world.room.route(ANI, 1, Chat("baru", id="m1"), T0 + 20 * SEC)
    back = world.join(BUDI, at=T0 + 31 * SEC)
    assert [m.text for m in back.backlog if isinstance(m, Chat)] == ["baru"]


def test_outbox_is_bounded() -> None:
    room = Room(C1, ANI, BUDI, outbox_limit=3)
    tokens = {}
    for user in (ANI, BUDI):
        issued = issue_join_token(C1, user, T0)
        room.add_grant(issued.grant)
        tokens[user] = issued.token
    room.join(ANI, Join(tokens[ANI], BROWSER), T0)
    for n in range(1, 6):
        room.route(ANI, 1, Chat(f"pesan {n}", id="m1"), T0)
    assert room.queued(BUDI) == 3
    back = room.join(BUDI, Join(tokens[BUDI], BROWSER), T0 + SEC)
    assert [m.text for m in back.backlog if isinstance(m, Chat)] == ["pesan 3", "pesan 4", "pesan 5"]


# --- recording consent ----------------------------------------------------------------


def test_recorder_joins_only_with_everyones_consent(world: World) -> None:
    world.join(ANI, consent=True)
    world.join(BUDI)
    with pytest.raises(RecordingNotAllowed):
        world.join(REC, kind=AIORTC)
    result = world.room.set_consent(BUDI, 1, True, T0)
    assert result.recording.allowed and result.recording.changed
    assert by_recipient(result.deliveries) == {
        ANI: Delivery(ANI, 1, Recording(C1, True)),
        BUDI: Delivery(BUDI, 1, Recording(C1, True)),
    }
    with pytest.raises(InvalidMessage) as info:
        world.join(REC, kind=BROWSER)
    assert info.value.field == "kind"
    recorder = world.join(REC, kind=AIORTC)
    assert recorder.welcome.recording_allowed
    # the recorder is aiortc: each browser doctor is polite and offers towards it
    assert all(p.polite is False and p.offerer is False for p in recorder.welcome.peers)


def test_withdrawn_consent_stops_the_recorder(world: World, sdp_offer: str) -> None:
    world.join(ANI, consent=True)
    world.join(BUDI, consent=True)
    world.join(REC, kind=AIORTC)
    with pytest.raises(InvalidMessage) as info:
        world.room.route(REC, 1, Answer(sdp_offer), T0)  # the recorder must say "to"
    assert info.value.field == "to"
    assert len(world.room.route(REC, 1, Answer(sdp_offer, to=ANI), T0)) == 1
    result = world.room.set_consent(ANI, 1, False, T0 + SEC)
    assert (result.recording.allowed, result.recording.changed) == (False, True)
    assert result.recording.stop_recorder
    assert {d.recipient for d in result.deliveries} == {ANI, BUDI, REC}
    unchanged = world.room.set_consent(ANI, 1, False, T0 + 2 * SEC)
    assert not unchanged.recording.changed and unchanged.deliveries == ()
    with pytest.raises(InvalidMessage):
        world.room.set_consent(REC, 1, True, T0)


def test_consent_via_join_notifies_the_others(world: World) -> None:
    world.join(ANI, consent=True)
    result = world.join(BUDI, consent=True)
    assert result.recording.allowed and result.recording.changed
    messages = [d.message for d in result.deliveries]
    assert Recording(C1, True) in messages
    assert result.welcome.recording_allowed


def test_consents_are_exposed_and_restorable(world: World) -> None:
    world.join(ANI, consent=True)
    world.join(BUDI, consent=False)
    assert dict(world.room.consents) == {ANI: True, BUDI: False}
    restored = Room(C1, ANI, BUDI, recorder=REC, consents={ANI: True, BUDI: True})
    assert restored.recording_allowed
    with pytest.raises(InvalidValue):
        Room(C1, ANI, BUDI, recorder=REC, consents={REC: True})
    with pytest.raises(NotAMember):
        Room(C1, ANI, BUDI, consents={EVE: True})


# --- lifecycle ------------------------------------------------------------------------


def test_room_follows_the_consult(make_consult: Callable[..., Consult]) -> None:
    consult = make_consult()
    with pytest.raises(RoomClosed):
        Room.for_consult(consult)
    accepted = consult.accept(BUDI, T0)
    room = Room.for_consult(accepted)
    assert dict(room.members) == {consult.requester: MemberRole.REQUESTER, BUDI: MemberRole.SPECIALIST}
    live = Room.for_consult(accepted.start_session(T0))
    tokens = {}
    for user in (consult.requester, BUDI):
        issued = issue_join_token(accepted.id, user, T0)
        live.add_grant(issued.grant)
        tokens[user] = issued.token
    live.join(consult.requester, Join(tokens[consult.requester], BROWSER), T0)
    assert not live.join(BUDI, Join(tokens[BUDI], BROWSER), T0).session_started


def test_closed_room_refuses_everything(world: World) -> None:
    world.join(ANI)
    world.join(BUDI)
    assert world.room.close() == ((ANI, 1), (BUDI, 1))
    assert world.room.closed and world.room.present == {}
    with pytest.raises(RoomClosed):
        world.join(ANI)
    with pytest.raises(RoomClosed):
        world.room.route(ANI, 1, Chat("halo?", id="m1"), T0)
