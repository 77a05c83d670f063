"""An aiortc consult peer: the kiosk client of a puskesmas PC and the peer tests use.

`ConsultPeer` joins a consult's room over the signaling websocket, negotiates one
RTCPeerConnection per other member, sends a media source, drains (and counts)
every received track, and relays chat. It is an adapter: who offers to whom
comes from the server (`signaling.negotiation` via ``welcome``/``presence``),
messages are parsed and built only by `signaling.messages`.

Negotiation, as the room spec requires of an aiortc peer:

* it offers only to peers for which the server says ``offerer: true`` (another
  aiortc peer of lower rank, or the recorder) and otherwise waits for an offer;
* its SDP carries all its candidates (half-trickle); trickled remote candidates
  are applied with ``addIceCandidate`` (held back until the remote description is
  set), an empty candidate being the end-of-candidates;
* it never rolls back and never restarts ICE: every recovery is a FRESH
  RTCPeerConnection. When a pair's connection fails the offerer renegotiates,
  the answerer asks it to with ``ice_restart``; an offer with new ICE
  credentials gets a fresh connection.

The first offer and its answer are on the join's critical path, and nothing in the offer, nor in the connection
the answer is made on, depends on whom it is for: while its websocket connects and the room admits it, a peer
prepares its first connection (`signaling.pair.prepare`: the connection, its tracks and, for the requester, whose
first offer the other doctor waits for, the offer with its candidates gathered; for another member, the connection
it will answer on) with the ICE servers it expects, those of its last welcome (none before the first). The welcome
settles it: the prepared connection is kept only when the welcome's ICE servers are those and the welcome's role is
the one it was made for; an offer is sent as is as the peer's first offer of that connection, and the first offer
received that needs a new connection is answered on an answerer's. So nothing is prepared where TURN is configured
(each welcome carries fresh credentials), nor on a rejoin that keeps a connection.

Signaling is not media. When the websocket drops (or goes silent: it pings
every ``heartbeat`` seconds) the peer connections stay up; the peer reconnects
with exponential backoff, joins again naming in ``keep`` the members it is
still connected to, and keeps or renegotiates each pair as `signaling.rejoin`
says. A join token refused on a rejoin (it expired) is replaced through
``renew_token`` when one is given (the kiosk's session asks the server for a
new one, as the pages do).

The room closes the websocket with 4401 (token rejected), 4403 (not a member),
4409 (room closed) or 4000 (replaced by a newer connection of the same member):
those end `ConsultPeer.run` with `PeerRefused`; anything else is retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import websockets
from aiortc import RTCIceCandidate, RTCIceServer, RTCPeerConnection
from aiortc.contrib.media import MediaRelay
from av import AudioFrame, VideoFrame
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from . import handshake_join, ice_hosts
from .bandwidth import Mode
from .errors import InvalidMessage
from .ids import UserId
from .link_quality import AdaptOptions, LinkQuality
from .media import MediaSource
from .members import MemberRole, PeerKind
from .messages import (
    MAX_MESSAGE_BYTES,
    Answer,
    Bye,
    Candidate,
    Chat,
    ChatStored,
    Consent,
    Error,
    IceRestart,
    Join,
    Message,
    Offer,
    Presence,
    Quality,
    Recording,
    Welcome,
    encode,
    parse,
)
from .pair import PeerLink, Prepared, prepare, remote_candidate
from .rejoin import PairStep, after_rejoin

__all__ = ["ConsultPeer", "FrameSink", "PeerRefused", "PeerStats", "room_url"]

log = logging.getLogger(__name__)

#: Close codes after which joining again cannot help.
FATAL_CLOSE_CODES = {
    4000: "replaced by a newer connection of the same member",
    4401: "join token rejected",
    4403: "not a member of this consult",
    4409: "the consult's room is closed",
}

#: With its reason, the one refusal a fresh join token can cure (a session that ended cannot).
TOKEN_REJECTED = (4401, "token_rejected")

#: Called for every received frame: (sender, sender's role, "audio"|"video", frame).
FrameSink = Callable[[UserId, MemberRole, str, AudioFrame | VideoFrame], None]



def _calling_after_request(after_request: Callable[[], None]) -> type[ClientConnection]:
    """A signaling connection that calls ``after_request`` once its opening handshake's request is written: work
    started then waits for the response beside it instead of holding the request up."""

    class Connection(ClientConnection):
        async def handshake(self, *args: Any, **kwargs: Any) -> None:
            # The task writes the request in its first step, before the callback's work gets the loop (FIFO).
            handshake = asyncio.ensure_future(super().handshake(*args, **kwargs))
            after_request()
            await handshake

    return Connection


class PeerRefused(Exception):
    """The room ended this peer's membership (a close code from FATAL_CLOSE_CODES)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


def room_url(server: str, consult_id: str) -> str:
    """``ws(s)://host/ws/consults/{id}`` from the server's ``http(s)://host`` URL."""
    base = server.rstrip("/")
    if base.startswith("https://"):
        base = "wss://" + base[len("https://") :]
    elif base.startswith("http://"):
        base = "ws://" + base[len("http://") :]
    elif not base.startswith(("ws://", "wss://")):
        raise ValueError("the server URL must start with http://, https://, ws:// or wss://")
    return f"{base}/ws/consults/{consult_id}"


@dataclass
class PeerStats:
    """What a peer saw; times are `time.monotonic()` values."""

    frames: Counter[tuple[str, str]] = field(default_factory=Counter)  # (user, kind)
    joins: int = 0
    negotiations: int = 0
    started_at: float = field(default_factory=time.monotonic)
    first_welcome_at: float | None = None
    first_connected_at: float | None = None
    last_connected_at: float | None = None
    first_video_at: float | None = None  # the first decoded video frame from anyone

    @property
    def video_frames(self) -> int:
        return sum(n for (_, kind), n in self.frames.items() if kind == "video")

    @property
    def audio_frames(self) -> int:
        return sum(n for (_, kind), n in self.frames.items() if kind == "audio")

    def video_from(self, user: str) -> int:
        return self.frames[(user, "video")]

    def audio_from(self, user: str) -> int:
        return self.frames[(user, "audio")]


@dataclass(frozen=True, slots=True)
class _Present:
    role: MemberRole
    generation: int
    offerer: bool


class ConsultPeer:
    """One aiortc participant of a consult room.

    ``room``: the ``ws://…/ws/consults/{id}`` URL; ``token``: the member's join
    token; ``source``: what to send (a `SyntheticSource`, a `MediaPlayer`, or None
    to only receive); ``ice_host_addresses``: the only addresses to gather host
    candidates on (None: every interface, as aioice does); ``consent_recording``:
    sent with every join (None: leave consent as it is); ``relay_only``: connect
    through TURN relays only; ``adapt``: how sending adapts to each link (None: it
    does not). ``sending_modes``/``receiving_modes`` say per other member whether
    video, audio only or only writing crosses the link, each way (``quality``
    messages tell the other side). ``heartbeat``: seconds between websocket pings
    (one unanswered for half as long gives the socket up); ``renew_token``: returns a
    fresh join token when the room refuses ours (it may raise `PeerRefused`); ``role``: the member's role in the
    room when the caller knows it before the welcome says it (None: taken for the requester's, as the kiosk's is),
    which decides whether an offer or a connection to answer on is prepared while joining.
    """

    def __init__(
        self,
        room: str,
        token: str,
        *,
        source: MediaSource | None = None,
        ice_host_addresses: Sequence[str] | None = None,
        consent_recording: bool | None = None,
        frame_sink: FrameSink | None = None,
        on_chat: Callable[[Chat], None] | None = None,
        on_bye: Callable[[Bye], Awaitable[None] | None] | None = None,
        on_recording: Callable[[bool], None] | None = None,
        backoff: tuple[float, float] = (0.1, 5.0),
        open_timeout: float = 10.0,
        connect_timeout: float = 10.0,
        answer_grace: float = 1.0,
        relay_only: bool = False,
        adapt: AdaptOptions | None = AdaptOptions(),  # noqa: B008 - frozen
        quality_interval: float = 2.0,
        heartbeat: float = 4.0,
        renew_token: Callable[[], Awaitable[str]] | None = None,
        role: MemberRole | None = None,
    ) -> None:
        if not room.startswith(("ws://", "wss://")):
            raise ValueError("room must be a ws:// or wss:// URL")
        self._room = room
        self._join = Join(token=token, kind=PeerKind.AIORTC, consent_recording=consent_recording)
        self._source = source
        self._ice_hosts = None if ice_host_addresses is None else ice_hosts.check_addresses(ice_host_addresses)
        self._frame_sink = frame_sink
        self._on_chat = on_chat
        self._on_bye = on_bye
        self._on_recording = on_recording
        self._backoff = backoff
        self._open_timeout = open_timeout
        self._connect_timeout = connect_timeout
        self._answer_grace = answer_grace
        self._heartbeat = heartbeat
        self._renew_token = renew_token
        self._role = role
        self._relay = MediaRelay()
        self._links: dict[UserId, PeerLink] = {}
        self._present: dict[UserId, _Present] = {}
        self._early_candidates: dict[UserId, list[RTCIceCandidate | None]] = {}
        self._lock = asyncio.Lock()
        self._stop = asyncio.Event()
        self._ws: ClientConnection | None = None
        self._session_tasks: set[asyncio.Task[None]] = set()
        self._closing: set[asyncio.Task[None]] = set()  # links being closed (see _drop_link)
        self._ice_servers: list[RTCIceServer] = []
        self._prepared: asyncio.Task[Prepared] | None = None  # the next connection, made before it is needed
        self._prepared_offers = False  # whether it holds an offer (else it is to answer on)
        self._relay_only = relay_only
        self._adapt = adapt
        self._quality_interval = quality_interval
        self.sending_modes: dict[UserId, Mode] = {}
        self.receiving_modes: dict[UserId, Mode] = {}
        self.welcome: Welcome | None = None
        self.recording_allowed = False
        self.stats = PeerStats()
        self.chats: list[Chat] = []  # each sender's chat of one id once, however often it was relayed
        self._chat_ids: set[tuple[UserId | None, str]] = set()
        #: Ids of our chats the room answered as stored.
        self.chats_stored: set[str] = set()
        self.byes: list[Bye] = []
        #: Members whose signaling socket dropped (announced ``reconnecting``), until they rejoin or leave.
        self.reconnecting: set[UserId] = set()

    # --- what tests and the command line look at ------------------------------------

    @property
    def websocket(self) -> ClientConnection | None:
        """The live signaling connection, if any."""
        return self._ws

    @property
    def peer_connections(self) -> dict[UserId, RTCPeerConnection]:
        """The current RTCPeerConnection towards each other member."""
        return {user: link.pc for user, link in self._links.items()}

    @property
    def present(self) -> dict[UserId, MemberRole]:
        """The other members connected to the room, as last announced."""
        return {user: p.role for user, p in self._present.items()}

    def connected_to(self, user: str) -> bool:
        link = self._links.get(UserId(user))
        return link is not None and link.connected

    async def wait_until(self, predicate: Callable[[], bool], timeout: float) -> None:
        """Poll ``predicate`` every 20 ms; TimeoutError after ``timeout`` seconds."""
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(0.02)

    # --- actions --------------------------------------------------------------------

    async def send_chat(self, text: str, to: str | None = None, chat_id: str | None = None) -> str:
        """Send a chat; its id (a new one unless ``chat_id``): send it again with that id until it is in
        `chats_stored` (the room stores it once, however often it is sent)."""
        chat_id = chat_id or uuid.uuid4().hex
        await self._send(Chat(text, id=chat_id, to=None if to is None else UserId(to)))
        return chat_id

    async def set_consent(self, recording: bool) -> None:
        """Give or withdraw consent to recording (also sent with every later rejoin)."""
        self._join = Join(token=self._join.token, kind=PeerKind.AIORTC, consent_recording=recording)
        await self._send(Consent(recording))

    async def hangup(self, reason: str | None = None) -> None:
        """Say bye to everyone present, then stop."""
        if self._ws is not None:
            with contextlib.suppress(ConnectionError, websockets.ConnectionClosed):
                targets: list[UserId | None] = [*self._present] or [None]
                for user in targets:
                    await self._send(Bye(reason, to=user))
        await self.stop()

    async def stop(self) -> None:
        """Leave the room: `run` returns once its connections are closed."""
        self._stop.set()
        ws = self._ws
        if ws is not None:
            await ws.close()

    # --- the connection loop ----------------------------------------------------------

    async def run(self) -> None:
        """Join, take part, and rejoin after every drop until `stop` (or `PeerRefused`)."""
        attempt = 0
        try:
            while not self._stop.is_set():
                welcomed = False
                try:
                    welcomed = await self._session()
                except PeerRefused:
                    raise
                except (OSError, TimeoutError, websockets.WebSocketException, InvalidMessage) as exc:
                    log.warning("signaling connection failed: %s", exc)
                if self._stop.is_set():
                    break
                attempt = 0 if welcomed else attempt + 1
                low, high = self._backoff
                delay = min(high, low * 2**attempt) * random.uniform(0.8, 1.2)
                log.info("rejoining in %.2f s", delay)
                try:
                    await asyncio.wait_for(self._stop.wait(), delay)
                except TimeoutError:
                    pass
        finally:
            await self._close_links()

    async def _session(self) -> bool:
        """One websocket connection: join, then handle messages until it closes.
        True if the room welcomed us."""
        welcomed = False
        kept = tuple(sorted(user for user, link in self._links.items() if link.connected))
        join = encode(replace(self._join, keep=kept))
        prepare = self._prepared is None and not kept and self._may_prepare()  # (else kept by a connect that failed)
        async with connect(
            self._room,
            subprotocols=[Subprotocol(p) for p in handshake_join.offered(join)],  # the welcome follows the upgrade
            open_timeout=self._open_timeout,
            max_size=MAX_MESSAGE_BYTES + 1024,
            compression=None,
            proxy=None,
            create_connection=_calling_after_request(self._prepare if prepare else lambda: None),
            ping_interval=self._heartbeat,
            ping_timeout=self._heartbeat / 2,
            close_timeout=self._heartbeat / 2,  # a silent socket cannot finish a closing handshake either
        ) as ws:
            self._ws = ws
            try:
                if ws.subprotocol != handshake_join.PROTOCOL:  # a server that reads no join in the handshake
                    await ws.send(join)
                async for raw in ws:
                    message = parse(raw)
                    if isinstance(message, Welcome):
                        welcomed = True
                    async with self._lock:
                        await self._handle(message)
            except websockets.ConnectionClosed:
                pass
            finally:
                self._ws = None
                for task in self._session_tasks:
                    task.cancel()
                self._session_tasks.clear()
                self._present.clear()
                self._early_candidates.clear()
                self._discard_prepared()
        code = ws.close_code
        if (code, ws.close_reason) == TOKEN_REJECTED and self._renew_token is not None and not self._stop.is_set():
            log.info("join token refused: asking for a new one")
            self._join = replace(self._join, token=await self._renew_token())
            return welcomed
        if code in FATAL_CLOSE_CODES and not self._stop.is_set():
            raise PeerRefused(code, ws.close_reason or FATAL_CLOSE_CODES[code])
        log.info("signaling connection closed (code %s)", code)
        return welcomed

    async def _send(self, message: Message) -> None:
        ws = self._ws
        if ws is None:
            raise ConnectionError("not connected to the room")
        await ws.send(encode(message))

    def _prepare(self) -> None:
        if self._prepared is None:
            self._prepared_offers = self._offers_first()
            self._prepared = asyncio.ensure_future(prepare(
                self._source, self._relay, offer=self._prepared_offers, ice_servers=self._ice_servers,
                ice_host_addresses=self._ice_hosts, relay_only=self._relay_only,
            ))  # fmt: skip

    def _may_prepare(self) -> bool:
        """Whether a connection prepared before the welcome may be used: one made with ICE servers that the welcome
        can repeat (TURN credentials are new each time)."""
        return all(server.credential is None for server in self._ice_servers)

    def _offers_first(self) -> bool:
        """Whether the first offer is ours: the requester's (or a member's whose role nobody has told yet)."""
        role = self._role if self.welcome is None else self.welcome.role
        return role in (None, MemberRole.REQUESTER)

    async def _take_prepared(self, offer: bool) -> Prepared | None:
        """The prepared connection, if it is one for what is to be done (to ``offer``, or to answer)."""
        if self._prepared_offers != offer:
            return None
        task, self._prepared = self._prepared, None
        if task is None:
            return None
        try:
            return await task
        except Exception as exc:  # made again, now that it is needed
            log.warning("preparing a connection failed: %s", exc)
            return None

    def _discard_prepared(self) -> None:
        task, self._prepared = self._prepared, None
        if task is not None:
            closing = asyncio.ensure_future(self._close_prepared(task))
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)

    @staticmethod
    async def _close_prepared(task: asyncio.Task[Prepared]) -> None:
        with contextlib.suppress(Exception):
            await (await task).close()

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._session_tasks.add(task)
        task.add_done_callback(self._session_tasks.discard)

    # --- messages ---------------------------------------------------------------------

    async def _handle(self, message: Message) -> None:
        if isinstance(message, Welcome):
            await self._on_welcome(message)
        elif isinstance(message, Presence):
            await self._on_presence(message)
        elif isinstance(message, Offer):
            await self._on_offer(message)
        elif isinstance(message, Answer):
            await self._on_answer(message)
        elif isinstance(message, Candidate):
            await self._on_candidate(message)
        elif isinstance(message, IceRestart):
            if message.sender is not None:
                await self._on_ice_restart(message.sender)
        elif isinstance(message, Chat):
            if (message.sender, message.id) in self._chat_ids:
                return  # sent again by its sender, whose first sending reached us
            self._chat_ids.add((message.sender, message.id))
            self.chats.append(message)
            if self._on_chat is not None:
                self._on_chat(message)
        elif isinstance(message, ChatStored):
            self.chats_stored.add(message.id)
        elif isinstance(message, Bye):
            await self._on_bye_message(message)
        elif isinstance(message, Quality):
            self._on_quality(message)
        elif isinstance(message, Recording):
            self.recording_allowed = message.allowed
            if self._on_recording is not None:
                self._on_recording(message.allowed)
        elif isinstance(message, Error):
            log.warning("room error %s (field %s, chat %s): %s", message.code, message.field, message.chat, message.message)
        else:
            log.warning("ignoring a %s message", message.type)

    async def _on_welcome(self, welcome: Welcome) -> None:
        self.welcome = welcome
        self.recording_allowed = welcome.recording_allowed
        self.stats.joins += 1
        if self.stats.first_welcome_at is None:
            self.stats.first_welcome_at = time.monotonic()
        servers = [
            RTCIceServer(urls=list(s.urls), username=s.username, credential=s.credential)
            for s in welcome.ice_servers
        ]
        if servers != self._ice_servers or self._prepared_offers != self._offers_first():  # not what it was made for
            self._discard_prepared()
        self._ice_servers = servers
        log.info(
            "joined consult %s as %s (%s), generation %d, %d other(s) present",
            welcome.consult, welcome.user, welcome.role.value, welcome.generation, len(welcome.peers),
        )
        for peer in welcome.peers:
            await self._on_joined(peer.user, _Present(peer.role, peer.generation, peer.offerer), peer.resumed)
        self._spawn(self._report_quality())

    async def _on_presence(self, presence: Presence) -> None:
        if presence.state == "reconnecting":
            log.info("%s is reconnecting (generation %d)", presence.user, presence.generation)
            self.reconnecting.add(presence.user)
            return
        self.reconnecting.discard(presence.user)
        if presence.state == "left":
            log.info("%s left (generation %d)", presence.user, presence.generation)
            self._present.pop(presence.user, None)
            return
        log.info("%s joined (generation %d)", presence.user, presence.generation)
        offerer = presence.offerer is True  # a joined presence always carries it
        present = _Present(presence.role, presence.generation, offerer)
        await self._on_joined(presence.user, present, presence.resumed is True)

    async def _on_joined(self, user: UserId, present: _Present, resumed: bool) -> None:
        self._present[user] = present
        link = self._links.get(user)
        step = after_rejoin(
            has_link=link is not None, connected=link is not None and link.connected,
            same_generation=link is not None and link.generation == present.generation,
            resumed=resumed, offerer=present.offerer,
        )  # fmt: skip
        if step is PairStep.KEEP and link is not None:
            log.info("keeping the connection to %s", user)
            link.generation = present.generation
            return
        await self._drop_link(user)
        if step is PairStep.OFFER:
            await self._offer(user)
        elif step is PairStep.ASK_RESTART:
            log.info("connection to %s lost: asking it to renegotiate", user)
            await self._send(IceRestart(to=user))

    def _new_link(self, user: UserId, offerer: bool, prepared: Prepared | None = None) -> PeerLink:
        present = self._present.get(user)
        role = present.role if present is not None else MemberRole.REQUESTER
        generation = present.generation if present is not None else 0

        def on_frame(kind: str, frame: AudioFrame | VideoFrame) -> None:
            self.stats.frames[(str(user), kind)] += 1
            if kind == "video" and self.stats.first_video_at is None:
                self.stats.first_video_at = time.monotonic()
            if self._frame_sink is not None:
                self._frame_sink(user, role, kind, frame)

        quality = None
        if self._adapt is not None and role is not MemberRole.RECORDER:
            quality = LinkQuality(self._adapt, lambda mode, _reason: self._mode_changed(user, mode))
            self.sending_modes[user] = quality.mode
        link = PeerLink(
            user, role, generation, offerer=offerer, ice_servers=self._ice_servers,
            ice_host_addresses=self._ice_hosts, on_frame=on_frame, on_state=self._on_link_state,
            relay_only=self._relay_only, quality=quality, prepared=prepared,
        )  # fmt: skip
        self._links[user] = link
        self._spawn(self._watch(link))
        return link

    def _on_link_state(self, link: PeerLink) -> None:
        state = link.state
        log.info("connection to %s: %s", link.user, state)
        if state == "connected":
            now = time.monotonic()
            self.stats.last_connected_at = now
            if self.stats.first_connected_at is None:
                self.stats.first_connected_at = now
        elif state == "failed" or (state == "closed" and not link.closing):
            # The offerer starts again at once; the answerer first gives the
            # offerer (which may have closed this connection to do just that)
            # a moment to send a new offer before asking for one.
            self._spawn(self._recover(link, delay=0.0 if link.offerer else self._answer_grace))

    async def _watch(self, link: PeerLink) -> None:
        """A pair not connected in time is started again (a lost offer or answer)."""
        await asyncio.sleep(self._connect_timeout)
        if self._links.get(link.user) is link and not link.connected:
            log.warning("no connection to %s after %.0f s", link.user, self._connect_timeout)
            await self._recover(link)

    async def _offer(self, user: UserId) -> None:
        await self._drop_link(user)
        link = self._new_link(user, offerer=True, prepared=await self._take_prepared(offer=True))
        sdp = await link.offer(self._source, self._relay)
        self.stats.negotiations += 1
        log.info("offering to %s", user)
        await self._send(Offer(sdp, to=user))

    async def _on_offer(self, offer: Offer) -> None:
        user = offer.sender
        if user is None:
            return
        link = self._links.get(user)
        if link is None or link.needs_new_connection_for(offer.sdp):
            await self._drop_link(user)
            link = self._new_link(user, offerer=False, prepared=await self._take_prepared(offer=False))
        sdp = await link.answer(offer.sdp, self._source, self._relay)
        self.stats.negotiations += 1
        log.info("answering %s", user)
        await self._send(Answer(sdp, to=user))
        await self._apply_early_candidates(link)

    async def _on_answer(self, answer: Answer) -> None:
        link = self._links.get(answer.sender) if answer.sender is not None else None
        if link is None or not link.awaiting_answer:
            log.info("ignoring an answer from %s that matches no offer", answer.sender)
            return
        await link.accept_answer(answer.sdp)
        await self._apply_early_candidates(link)

    async def _on_candidate(self, message: Candidate) -> None:
        user = message.sender
        if user is None:
            return
        candidate = remote_candidate(message)
        link = self._links.get(user)
        if link is None or not link.has_remote_description:
            self._early_candidates.setdefault(user, []).append(candidate)
            return
        await link.add_candidate(candidate)

    async def _apply_early_candidates(self, link: PeerLink) -> None:
        for candidate in self._early_candidates.pop(link.user, []):
            await link.add_candidate(candidate)

    async def _on_ice_restart(self, user: UserId) -> None:
        present = self._present.get(user)
        link = self._links.get(user)
        if (
            link is not None
            and link.state in ("new", "connecting")
            and time.monotonic() - link.created_at < self._connect_timeout
        ):
            log.info("%s asked for a restart while one is under way: ignored", user)
            return
        if present is not None and present.offerer:
            log.info("%s asked for a restart: renegotiating on a new connection", user)
            await self._offer(user)

    async def _on_bye_message(self, bye: Bye) -> None:
        self.byes.append(bye)
        if bye.sender is not None:
            log.info("%s hung up%s", bye.sender, f": {bye.reason}" if bye.reason else "")
            await self._drop_link(bye.sender)
        if self._on_bye is not None:
            result = self._on_bye(bye)
            if result is not None:
                await result

    async def _recover(self, link: PeerLink, delay: float = 0.0) -> None:
        """A pair's connection failed under us: start that pair again."""
        await asyncio.sleep(delay)
        async with self._lock:
            if self._links.get(link.user) is not link or self._ws is None:
                return
            present = self._present.get(link.user)
            await self._drop_link(link.user)
            if present is None:
                return  # renegotiated when it joins again
            if present.offerer:
                await self._offer(link.user)
            else:
                log.info("connection to %s lost: asking it to renegotiate", link.user)
                await self._send(IceRestart(to=link.user))

    # --- link quality ----------------------------------------------------------------

    def _mode_changed(self, user: UserId, mode: Mode) -> None:
        self.sending_modes[user] = mode
        self._spawn(self._send_quality(user))

    async def _send_quality(self, user: UserId, fps: float | None = None) -> None:
        link = self._links.get(user)
        if link is None or link.quality is None:
            return
        with contextlib.suppress(ConnectionError, websockets.ConnectionClosed):
            await self._send(Quality(link.quality.mode.value, fps, to=user))

    async def _report_quality(self) -> None:
        """Tell each connected member the mode we send it and the frames a second we
        decode from it (its controller falls back to audio when too few get through)."""
        last: dict[UserId, tuple[float, int]] = {}
        while True:
            await asyncio.sleep(self._quality_interval)
            now = time.monotonic()
            for user, link in list(self._links.items()):
                frames = self.stats.video_from(user)
                previous = last.get(user)
                last[user] = (now, frames)
                if previous is not None and link.connected and link.quality is not None:
                    then, before = previous
                    await self._send_quality(user, round((frames - before) / max(now - then, 1e-3), 1))

    def _on_quality(self, message: Quality) -> None:
        user = message.sender
        if user is None:
            return
        mode = Mode(message.mode)
        if self.receiving_modes.get(user) is not mode:
            log.info("%s sends %s", user, mode.value)
        self.receiving_modes[user] = mode
        link = self._links.get(user)
        if link is not None and link.quality is not None and message.fps is not None:
            link.quality.remote_fps = message.fps

    # --- media and teardown -----------------------------------------------------------

    async def _drop_link(self, user: UserId) -> None:
        link = self._links.pop(user, None)
        if link is not None:
            # Closing releases the link's TURN allocation, which over a dead media link waits out every
            # retry (15 s and more): the signaling (chat, a new offer, the room's close) does not wait for it.
            task = asyncio.ensure_future(link.close())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def _close_links(self) -> None:
        self._discard_prepared()
        for user in list(self._links):
            await self._drop_link(user)
        await asyncio.gather(*self._closing)
