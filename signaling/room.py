"""A consult's video room: who may be in it, who is connected, and where each
signaling message goes. Pure state and decisions; the server owns the sockets.

Members are the consult's requesting doctor, the accepting specialist and,
optionally, the server's recorder (an aiortc peer that may join only while
every doctor consents). A member joins with the `Join` message carrying its
join token (see `signaling.tokens`); each join gets a new per-member
*generation*, so a reconnect replaces the older connection: the server closes
the generation in `JoinResult.replaced`, and a `leave` or `route` from an older
generation is ignored or refused.

Relay rules (`Room.route`):

* the sender must be a member connected with its current generation;
* ``"from"`` is always stamped by the room (a client's value is overwritten),
  and so are ``"consult"`` and ``"to"``; a ``"consult"`` naming another room is
  refused (`WrongRoom`);
* ``"to"`` must be another member; without it, negotiation messages (offer,
  answer, candidate, ice_restart) go to the other doctor and chat/bye go to
  every other member; the recorder must always say ``"to"``;
* when either side of a pair is an aiortc peer, only the pair's offerer may send
  an offer (`NotOfferer`); two browsers may both offer (perfect negotiation);
* a recipient who is away gets the message in its outbox (bounded, 30 s by
  default), delivered after the welcome when it joins again; a (re)join starts
  a new negotiation, so queued offers, answers, candidates and ICE restarts
  from or for the member's previous connection are dropped (chat and bye stay).

Signaling is not media: the RTCPeerConnections run peer to peer and outlive a
dropped socket. A member whose socket dropped (`Room.leave` with ``away``) is
announced as ``reconnecting``, and as ``left`` only if it has not joined again
when the server's grace period ends (`Room.gone`). A rejoin names in
``keep`` the members it still has a connected RTCPeerConnection with; each of
them learns it (``resumed``) and keeps its side, so nobody renegotiates a
working call.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Literal

from . import _check
from .consult import Consult, ConsultState
from .errors import (
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
from .ids import ConsultId, UserId
from .members import MemberRole, PeerKind
from .messages import (
    Answer,
    Bye,
    Candidate,
    Chat,
    IceRestart,
    Join,
    Message,
    Offer,
    PeerInfo,
    Presence,
    Quality,
    Recording,
    RelayMessage,
    Welcome,
    stamped,
)
from .negotiation import NegotiationRole, Side, pair_roles
from .outbox import DEFAULT_LIMIT, DEFAULT_MAX_AGE, Outbox
from .tokens import JoinGrant, verify_join_token
from .turn import IceServer

__all__ = [
    "Connection",
    "ConsentResult",
    "Delivery",
    "JoinResult",
    "LeaveResult",
    "RecordingState",
    "Room",
]

# Messages that belong to one negotiation between two particular connections.
_NEGOTIATION = (Offer, Answer, Candidate, IceRestart)
_RELAY = (Offer, Answer, Candidate, IceRestart, Bye, Chat, Quality)
# Whom a join kept media with, for most joins: one set for them all (an empty frozenset is 216 bytes, and no singleton).
_NOBODY: frozenset[UserId] = frozenset()


@dataclass(frozen=True, slots=True)
class Connection:
    """A member's live connection to the room."""

    kind: PeerKind
    generation: int


@dataclass(frozen=True, slots=True)
class Delivery:
    """Send ``message`` to ``recipient``'s connection of ``generation``."""

    recipient: UserId
    generation: int
    message: Message


@dataclass(frozen=True, slots=True)
class RecordingState:
    """Recording consent after a change. ``stop_recorder``: consent is gone while the
    recorder is connected — the server must stop it (and then `Room.leave` it)."""

    allowed: bool
    changed: bool
    stop_recorder: bool


@dataclass(frozen=True, slots=True)
class JoinResult:
    generation: int
    #: The member's older connection (generation) to close, if it was still open.
    replaced: int | None
    #: Send first, to the joining connection.
    welcome: Welcome
    #: Relayed messages queued while the member was away; send right after the welcome.
    backlog: tuple[RelayMessage, ...]
    #: Presence (and recording) messages for the other connected members.
    deliveries: tuple[Delivery, ...]
    #: True once: requester and specialist are both here for the first time; the
    #: server then records `Consult.start_session`.
    session_started: bool
    recording: RecordingState


@dataclass(frozen=True, slots=True)
class LeaveResult:
    deliveries: tuple[Delivery, ...]


@dataclass(frozen=True, slots=True)
class ConsentResult:
    deliveries: tuple[Delivery, ...]
    recording: RecordingState


class _Member:
    """What the room knows of one member. One object a member rather than a dict a field: a room lives as long as
    its consult's sockets, and eight small dicts a room cost more than two of these."""

    __slots__ = ("role", "grant", "connection", "generation", "last_kind", "kept", "consent", "outbox")

    def __init__(self, role: MemberRole) -> None:
        self.role = role
        self.grant: JoinGrant | None = None
        self.connection: Connection | None = None  # while present
        self.generation = 0  # of its latest join; 0 before any
        self.last_kind: PeerKind | None = None  # of its latest join, present or not
        self.kept = _NOBODY  # whom its latest join still had media with
        self.consent: bool | None = None
        self.outbox: Outbox[RelayMessage] | None = None  # made when a message first waits for it


class Room:
    __slots__ = ("_consult_id", "_members", "_outbox_limit", "_outbox_max_age", "_session_started", "_closed")

    def __init__(
        self,
        consult_id: ConsultId,
        requester: UserId,
        specialist: UserId | None = None,
        *,
        recorder: UserId | None = None,
        session_started: bool = False,
        consents: Mapping[UserId, bool] | None = None,
        outbox_limit: int = DEFAULT_LIMIT,
        outbox_max_age: timedelta = DEFAULT_MAX_AGE,
    ) -> None:
        self._consult_id = ConsultId(_check.identifier(consult_id, "consult_id"))
        self._members: dict[UserId, _Member] = {}
        self._add_member(requester, MemberRole.REQUESTER)
        if specialist is not None:
            self._add_member(specialist, MemberRole.SPECIALIST)
        if recorder is not None:
            self._add_member(recorder, MemberRole.RECORDER)
        for user, consent in (consents or {}).items():
            if self.role_of(user, field="consents") is MemberRole.RECORDER:
                raise InvalidValue("consents", "the recorder does not give consent")
            self._members[user].consent = _check.boolean(consent, f"consents.{user}")
        Outbox[RelayMessage](outbox_limit, outbox_max_age)  # validate the settings now
        self._outbox_limit = outbox_limit
        self._outbox_max_age = outbox_max_age
        self._session_started = session_started
        self._closed = False

    @classmethod
    def for_consult(
        cls,
        consult: Consult,
        *,
        recorder: UserId | None = None,
        consents: Mapping[UserId, bool] | None = None,
        outbox_limit: int = DEFAULT_LIMIT,
        outbox_max_age: timedelta = DEFAULT_MAX_AGE,
    ) -> Room:
        """The room of an accepted or in-session consult (rebuilt the same way after
        a restart: then add the stored grants and pass the stored consents)."""
        if not consult.state.has_room:
            raise RoomClosed(f"a {consult.state.value} consult has no room")
        return cls(
            consult.id,
            consult.requester,
            consult.specialist,
            recorder=recorder,
            session_started=consult.state is ConsultState.IN_SESSION,
            consents=consents,
            outbox_limit=outbox_limit,
            outbox_max_age=outbox_max_age,
        )

    # --- membership ---------------------------------------------------------------

    def _add_member(self, user: UserId, role: MemberRole) -> None:
        _check.identifier(user, role.value)
        holder = self._holder(role)
        if user in self._members and self._members[user].role is not role:
            raise InvalidValue(role.value, "is already a member in another role")
        if holder is not None and holder != user:
            raise InvalidValue(role.value, f"the room already has a {role.value}")
        self._members.setdefault(user, _Member(role))

    def _holder(self, role: MemberRole) -> UserId | None:
        return next((u for u, m in self._members.items() if m.role is role), None)

    @property
    def consult_id(self) -> ConsultId:
        return self._consult_id

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def members(self) -> Mapping[UserId, MemberRole]:
        return MappingProxyType({u: m.role for u, m in self._members.items()})

    @property
    def present(self) -> Mapping[UserId, Connection]:
        return MappingProxyType(dict(self._sorted_present()))

    def role_of(self, user: UserId, *, field: str | None = None) -> MemberRole:
        return self._member(user, field=field).role

    def _member(self, user: UserId, *, field: str | None = None) -> _Member:
        try:
            return self._members[user]
        except KeyError:
            raise NotAMember(user, field=field) from None

    def set_specialist(self, user: UserId) -> None:
        """The consult was accepted by ``user`` after the room was made."""
        self._add_member(user, MemberRole.SPECIALIST)

    def set_recorder(self, user: UserId) -> None:
        self._add_member(user, MemberRole.RECORDER)

    def add_grant(self, grant: JoinGrant) -> None:
        """Accept the grant of a join token issued to a member (replaces an older one)."""
        if grant.consult_id != self._consult_id:
            raise WrongRoom(self._consult_id, grant.consult_id)
        self._member(grant.user, field="user").grant = grant

    # --- recording consent --------------------------------------------------------

    @property
    def consents(self) -> Mapping[UserId, bool]:
        """Each doctor's latest recording consent (for the server to persist)."""
        return MappingProxyType({u: m.consent for u, m in self._members.items() if m.consent is not None})

    @property
    def recording_allowed(self) -> bool:
        """Every doctor of the consult (requester and specialist) consented."""
        doctors = [m for m in self._members.values() if m.role is not MemberRole.RECORDER]
        return len(doctors) == 2 and all(m.consent is True for m in doctors)

    def _recording_change(self, before: bool, exclude: UserId | None) -> tuple[
        RecordingState, list[Delivery]
    ]:
        after = self.recording_allowed
        deliveries: list[Delivery] = []
        if after != before:
            note = Recording(self._consult_id, after)
            deliveries = [
                Delivery(user, conn.generation, note)
                for user, conn in self._sorted_present()
                if user != exclude
            ]
        recorder = self._holder(MemberRole.RECORDER)
        stop = not after and recorder is not None and self._members[recorder].connection is not None
        return RecordingState(after, after != before, stop), deliveries

    def set_consent(
        self, user: UserId, generation: int, consent: bool, now: datetime
    ) -> ConsentResult:
        """A doctor gives or withdraws consent to recording (a `Consent` message)."""
        self._require_open()
        _check.aware(now, "now")
        member = self._member(user)
        self._require_current(user, generation)
        if member.role is MemberRole.RECORDER:
            raise InvalidMessage("type", "the recorder does not give consent")
        _check.boolean(consent, "recording", error=InvalidMessage)
        before = self.recording_allowed
        member.consent = consent
        state, deliveries = self._recording_change(before, exclude=None)
        return ConsentResult(tuple(deliveries), state)

    # --- presence -----------------------------------------------------------------

    def _sorted_present(self) -> list[tuple[UserId, Connection]]:
        present = [(u, m.connection) for u, m in self._members.items() if m.connection is not None]
        present.sort(key=lambda item: self._members[item[0]].role.rank)
        return present

    def _connection(self, user: UserId) -> Connection:
        """The connection of a member known to be present."""
        connection = self._members[user].connection
        assert connection is not None, user
        return connection

    def _roles(self, me: UserId, other: UserId, other_kind: PeerKind) -> NegotiationRole:
        mine = Side(self._members[me].role, self._connection(me).kind)
        theirs = Side(self._members[other].role, other_kind)
        return pair_roles(mine, theirs)[0]

    def join(
        self,
        user: UserId,
        message: Join,
        now: datetime,
        *,
        ice_servers: Iterable[IceServer] = (),
    ) -> JoinResult:
        """Admit ``user``'s new connection, or raise (`NotAMember`, `TokenRejected`,
        `WrongRoom`, `RecordingNotAllowed`, `RoomClosed`)."""
        self._require_open()
        _check.aware(now, "now")
        if message.consult is not None and message.consult != self._consult_id:
            raise WrongRoom(self._consult_id, message.consult)
        member = self._member(user)
        role, grant = member.role, member.grant
        if grant is None:
            raise TokenRejected("no join token was issued to this member")
        verify_join_token(grant, message.token, consult_id=self._consult_id, user=user, now=now)
        if role is MemberRole.RECORDER:
            if message.kind is not PeerKind.AIORTC:
                raise InvalidMessage("kind", "the recorder is an aiortc peer")
            if not self.recording_allowed:
                raise RecordingNotAllowed("not every member consented to recording")

        before = self.recording_allowed
        if message.consent_recording is not None and role is not MemberRole.RECORDER:
            member.consent = message.consent_recording
        previous = member.connection
        generation = member.generation = member.generation + 1
        member.connection = Connection(message.kind, generation)
        member.last_kind = message.kind
        member.kept = frozenset(message.keep) if message.keep else _NOBODY

        peers: list[PeerInfo] = []
        deliveries: list[Delivery] = []
        for other, conn in self._sorted_present():
            if other == user:
                continue
            mine = self._roles(user, other, conn.kind)
            them = self._members[other]
            peers.append(
                PeerInfo(
                    other, them.role, conn.kind, conn.generation,
                    polite=mine.polite, offerer=mine.offerer, resumed=user in them.kept,
                )  # fmt: skip
            )
            theirs = self._roles(other, user, message.kind)
            presence = Presence(
                self._consult_id, user, role, "joined", generation,
                kind=message.kind, polite=theirs.polite, offerer=theirs.offerer, resumed=(other in message.keep) or None,
            )  # fmt: skip
            deliveries.append(Delivery(other, conn.generation, presence))
        recording, notes = self._recording_change(before, exclude=user)
        deliveries.extend(notes)

        welcome = Welcome(
            consult=self._consult_id,
            user=user,
            role=role,
            kind=message.kind,
            generation=generation,
            peers=tuple(peers),
            ice_servers=tuple(ice_servers),
            recording_allowed=self.recording_allowed,
        )
        # A (re)join starts a new negotiation on both sides: offers, answers and candidates
        # queued from or for the member's previous connection would only confuse the new one.
        for recipient, waiting in self._members.items():
            if waiting.outbox is None:
                continue
            if recipient == user:
                waiting.outbox.discard(lambda m: isinstance(m, _NEGOTIATION))
            else:
                waiting.outbox.discard(lambda m: isinstance(m, _NEGOTIATION) and m.sender == user)
        outbox, member.outbox = member.outbox, None
        backlog = tuple(outbox.drain(now)) if outbox is not None else ()
        started = False
        if not self._session_started and self._both_doctors_present():
            self._session_started = started = True
        return JoinResult(
            generation=generation,
            replaced=previous.generation if previous is not None else None,
            welcome=welcome,
            backlog=backlog,
            deliveries=tuple(deliveries),
            session_started=started,
            recording=recording,
        )

    def _both_doctors_present(self) -> bool:
        return sum(m.connection is not None and m.role is not MemberRole.RECORDER for m in self._members.values()) == 2

    def leave(self, user: UserId, generation: int, now: datetime, *, away: bool = False) -> LeaveResult | None:
        """``user``'s connection of ``generation`` closed. None (nothing to do) if that
        connection was already replaced by a newer one, or never joined. ``away``: the
        socket dropped rather than said goodbye, so the others hear ``reconnecting``;
        the server calls `gone` when its grace period ends."""
        _check.aware(now, "now")
        member = self._members.get(user)
        if member is None or member.connection is None or member.connection.generation != generation:
            return None
        member.connection = None
        return self._announce(user, "reconnecting" if away else "left", generation)

    def gone(self, user: UserId, generation: int, now: datetime) -> LeaveResult | None:
        """The grace period of ``user``'s dropped connection of ``generation`` ended:
        ``left`` for the others, unless it joined again meanwhile (None)."""
        _check.aware(now, "now")
        member = self._members.get(user)
        if self._closed or member is None or member.connection is not None or member.last_kind is None or member.generation != generation:
            return None
        return self._announce(user, "left", generation)

    def _announce(self, user: UserId, state: Literal["reconnecting", "left"], generation: int) -> LeaveResult:
        note = Presence(self._consult_id, user, self._members[user].role, state, generation)
        return LeaveResult(tuple(Delivery(u, c.generation, note) for u, c in self._sorted_present()))

    def _require_open(self) -> None:
        if self._closed:
            raise RoomClosed("this consult's room is closed")

    def _require_current(self, user: UserId, generation: int) -> None:
        member = self._members.get(user)
        conn = member.connection if member is not None else None
        if conn is None:
            raise NotJoined("join the room first")
        if conn.generation != generation:
            raise NotJoined("this connection was replaced by a newer one")

    # --- relay --------------------------------------------------------------------

    def route(
        self, sender: UserId, generation: int, message: RelayMessage, now: datetime
    ) -> list[Delivery]:
        """Where ``message`` from ``sender``'s connection goes, stamped. Recipients who
        are away get it in their outbox instead of a `Delivery`."""
        _check.aware(now, "now")
        recipients = self.addressees(sender, generation, message)
        deliveries: list[Delivery] = []
        for recipient in recipients:
            out = stamped(message, sender=sender, consult=self._consult_id, to=recipient)
            conn = self._members[recipient].connection
            if conn is not None:
                deliveries.append(Delivery(recipient, conn.generation, out))
            elif not isinstance(message, Quality):  # a link's state is stale by the time anyone is back
                self._outbox(recipient).put(out, now)
        return deliveries

    def addressees(self, sender: UserId, generation: int, message: RelayMessage) -> list[UserId]:
        """Whom `route` would send ``message`` to, or the refusal it would raise; changes nothing (the server
        asks before it stores a chat, which it relays only once stored)."""
        self._require_open()
        role = self.role_of(sender)
        self._require_current(sender, generation)
        if not isinstance(message, _RELAY):
            raise InvalidMessage("type", f"{message.type!r} is not relayed")
        if message.consult is not None and message.consult != self._consult_id:
            raise WrongRoom(self._consult_id, message.consult)
        recipients = self._recipients(sender, role, message)
        if isinstance(message, Offer):
            for recipient in recipients:
                self._check_offerer(sender, recipient)
        return recipients

    def _recipients(
        self, sender: UserId, role: MemberRole, message: RelayMessage
    ) -> list[UserId]:
        if message.to is not None:
            if message.to == sender:
                raise InvalidMessage("to", "cannot address yourself")
            self.role_of(message.to, field="to")
            return [message.to]
        if isinstance(message, _NEGOTIATION):
            if role is MemberRole.RECORDER:
                raise InvalidMessage("to", "the recorder must name the recipient")
            other_role = (
                MemberRole.SPECIALIST if role is MemberRole.REQUESTER else MemberRole.REQUESTER
            )
            other = self._holder(other_role)
            if other is None:
                raise InvalidMessage("to", "there is no other doctor in this room yet")
            return [other]
        others = [u for u in self._members if u != sender]
        return sorted(others, key=lambda u: self._members[u].role.rank)

    def _check_offerer(self, sender: UserId, recipient: UserId) -> None:
        """Where aiortc is involved only the pair's offerer offers (two browsers
        resolve collisions themselves with perfect negotiation)."""
        kind = self._members[recipient].last_kind
        if kind is None:
            return  # never joined: nothing known to protect yet
        if PeerKind.AIORTC not in (kind, self._connection(sender).kind):
            return
        if not self._roles(sender, recipient, kind).offerer:
            raise NotOfferer(
                "only the pair's offerer may send an offer when an aiortc peer is involved",
                field="type",
            )

    def _outbox(self, user: UserId) -> Outbox[RelayMessage]:
        member = self._members[user]
        if member.outbox is None:
            member.outbox = Outbox(self._outbox_limit, self._outbox_max_age)
        return member.outbox

    def queued(self, user: UserId) -> int:
        """How many messages wait in ``user``'s outbox (before age pruning)."""
        member = self._members.get(user)
        return 0 if member is None or member.outbox is None else len(member.outbox)

    # --- end ----------------------------------------------------------------------

    def close(self) -> tuple[tuple[UserId, int], ...]:
        """The consult is over: refuse everything from now on. Returns the
        (user, generation) connections the server should close."""
        connections = tuple((u, c.generation) for u, c in self._sorted_present())
        self._closed = True
        for member in self._members.values():
            member.connection = member.outbox = member.grant = None
        return connections
