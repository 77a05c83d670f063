"""The signaling websocket ``/ws/consults/{id}`` (the aiortc peer and the browsers depend on it exactly).

It is a public route: it authenticates with a join token, not a session.

1. A client connects to ``/ws/consults/{id}``; its first message must be
   ``{"type": "join", "token": JOIN_TOKEN, "kind": "browser"|"aiortc",
   "consent_recording"?: bool}`` with a token from ``POST /api/consults/{id}/join``,
   within ``consult.join_timeout_s`` (10 s). Refusals are an ``error`` message, then
   a close: ``token_rejected`` 4401, ``not_a_member`` 4403 (also
   ``recording_not_allowed``), ``room_closed`` 4409 (the consult is not accepted or
   in session), a malformed first message 4400, no join in time 4408. A client may instead carry its join in
   the handshake (`signaling.handshake_join`): it is read before the upgrade, and the welcome follows it at once.
2. The joiner gets ``welcome`` (with its ICE servers and TURN credentials), then any
   messages queued while it was away; the others get ``presence``. When both doctors
   are there for the first time the consult moves to ``in_session``.
3. Every frame (the join too) is decoded by `server.strict_input` (the 96 KB cap, 32
   levels, no NUL or lone surrogate), then checked by `signaling.messages.parse_client`;
   relayed kinds go through `Room.route`, which stamps ``from``, only to other members
   of this room; the recipient gets the sender's frame with the room's envelope
   (`signaling.forward`). A bad message gets an ``error`` reply; the
   socket and the room stay up. Chat is stored before it is relayed, once per
   sender and id: its sender gets ``chat_stored`` (also for a chat sent again),
   or an ``error`` naming it (``"chat": id``): ``chat_not_stored`` (nothing was
   stored) and ``chat_outcome_unknown`` (the commit's answer was lost) both mean
   send it again with the same id. ``consent`` is stored. A frame over 1 MiB
   closes the socket (1009).
4. A new join by the same member replaces its older connection, which is closed
   with 4000 "replaced".
5. When the consult ends the room closes its sockets with 4409 (final, as for a closed
   room); when this server shuts down, with 1001 (going away: reconnect).
6. When another live process holds the room, this one relays the socket there after
   the join (`server.room_relay`); if that process cannot be reached, or the room has
   moved again, the socket is closed with 1013 (try again).
7. A join token dies with the session that asked for it: a token whose session was
   revoked or has expired is refused with ``token_rejected`` 4401, and a joined member
   whose session is revoked (logout, user disabled, role changed) or expires is closed
   with 4401 and the reason ``session_revoked`` or ``session_expired`` by the process
   that holds the room (a relayed socket gets the same code), through the guard of
   `server.revocation`: sign in again, do not rejoin. A chat or consent re-reads the
   session first; signaling frames rely on the close.
8. The server pings every socket each ``consult.heartbeat_s`` and closes one that does
   not answer within half of that; a browser, which cannot send pings, may send
   ``{"type": "ping"}`` and gets ``{"type": "pong"}``. A socket that dropped (rather
   than closed with 1000/1001 or was closed by the server) leaves its member
   ``reconnecting`` for the others, ``left`` after ``consult.rejoin_grace_s``: the
   media of the call runs peer to peer and does not stop meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import uuid
from typing import Any

import asyncpg
from aiohttp import WSMsgType, hdrs, web

from server import audit, consult_chat, consults, events, pending_chats, socket_limits, strict_input
from server.errors import ApiError
from server.keys import CONFIG, METRICS, POOL, REVOCATIONS, ROOMS, WEBSOCKETS
from server.pending_chats import PendingChats
from server.revocation import CLOSE_SESSION_ENDED, REVOKED, Guard
from server.room_relay import RELAYED_HEADER, TRY_AGAIN, relay
from server.rooms import RECORDER, Connection, LiveRoom, OwnedElsewhere, Sent, grant_of, ice_for
from server.upgraded import ENDED, LiveSocket, upgrade
from signaling import access, handshake_join
from signaling.access import Action
from signaling.errors import (
    InvalidMessage,
    NotAMember,
    NotJoined,
    RecordingNotAllowed,
    RoomClosed,
    SignalingError,
    TokenRejected,
)
from signaling.ids import UserId
from signaling.messages import (
    MAX_MESSAGE_BYTES,
    Chat,
    ClientMessage,
    Consent,
    Error,
    Join,
    Ping,
    Pong,
    chat_id_of,
    chat_stored_text,
    encode,
    error_reply,
    parse_client,
)
from signaling.room import JoinResult
from signaling.tokens import token_digest

# Why a join is not admitted here: refused, or the room is held by another process.
Refusal = OwnedElsewhere | SignalingError

CLOSE_REPLACED = 4000
CLOSE_BAD_JOIN = 4400
CLOSE_CODES = {TokenRejected: 4401, NotAMember: 4403, RecordingNotAllowed: 4403, RoomClosed: 4409}
JOIN_TIMEOUT_CLOSE = 4408
# The error code of a chat whose transaction failed: nothing of it was stored, and it may be sent again.
NOT_STORED = "chat_not_stored"
# The error code of a chat whose commit failed: it may be stored; sent again with the same id, it is stored once.
OUTCOME_UNKNOWN = "chat_outcome_unknown"
# Closes that end a membership on purpose (goodbye, going away, refused, ended); any other is a drop.
DELIBERATE_CLOSES = frozenset({1000, 1001, socket_limits.CLOSE_CODE, CLOSE_SESSION_ENDED, 4409})
# Frames up to this reach parse_client (which refuses anything over 96 KB with an error reply);
# a larger frame closes the socket with 1009.
MAX_FRAME_BYTES = 1024 * 1024


def _decode(raw: str | bytes) -> Any:
    """A frame through the server's strict JSON decoder, the one every body and socket uses."""
    try:
        return strict_input.loads(raw, what="message", max_bytes=MAX_MESSAGE_BYTES)
    except ApiError as exc:
        raise InvalidMessage(exc.field, exc.message) from None


async def _refuse(ws: web.WebSocketResponse, exc: SignalingError, code: int) -> None:
    with contextlib.suppress(ConnectionResetError, RuntimeError):
        await ws.send_str(encode(error_reply(exc)))
        await ws.close(code=code, message=exc.code.encode())


def _as_join(raw: str | bytes) -> Join:
    """A join message, or `InvalidMessage`."""
    message = parse_client(_decode(raw))
    if not isinstance(message, Join):
        raise InvalidMessage("type", "the first message must be join")
    return message


def _handshake_join(request: web.Request) -> tuple[Join, str] | InvalidMessage | None:
    """The join a client offered in its handshake (`signaling.handshake_join`) and its text, if it did."""
    try:
        text = handshake_join.join_text(request.headers.getall(hdrs.SEC_WEBSOCKET_PROTOCOL, ()))
        return None if text is None else (_as_join(text), text)
    except InvalidMessage as exc:
        return exc


async def _first_message(ws: web.WebSocketResponse, timeout: float) -> tuple[Join, str | bytes] | None:
    """The join and its frame as received (relayed unchanged when another process holds the room)."""
    try:
        msg = await ws.receive(timeout=timeout)
    except TimeoutError:
        await ws.close(code=JOIN_TIMEOUT_CLOSE, message=b"no join message in time")
        return None
    if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
        return None
    try:
        return _as_join(msg.data), msg.data
    except InvalidMessage as exc:
        await _refuse(ws, exc, CLOSE_BAD_JOIN)
        return None


async def _admission(request: web.Request, consult_id: str, join: Join) -> tuple[LiveRoom, asyncpg.Record] | Refusal:
    """The room and the join grant behind the token, with the session behind it (read from the database), or the
    refusal (`OwnedElsewhere` when another process holds the room)."""
    app = request.app

    def judge(grant: asyncpg.Record | None) -> None:
        if grant is None:
            raise TokenRejected("token not recognised")
        if not grant["live"]:
            raise TokenRejected("the session that asked for this token has ended")
        if str(grant["grant_consult"]) == consult_id:
            _may_join(app, consult_id, grant)

    hub = app[ROOMS]
    try:
        return await hub.admit(consult_id, hub.nodes.url_for(request), token_digest(join.token), judge)
    except (OwnedElsewhere, SignalingError) as refusal:
        return refusal


def _join(app: web.Application, live: LiveRoom, grant: asyncpg.Record, join: Join) -> tuple[UserId, JoinResult]:
    """Join the room as the grant's member, or raise the refusal."""
    member = UserId(grant["member"])
    if str(grant["grant_consult"]) == live.room.consult_id and member in live.room.members:
        live.room.add_grant(grant_of(grant))  # issued by any process: the database has the latest
    at = consults.now()
    return member, live.room.join(member, join, at, ice_servers=ice_for(app, member, at))


def _may_join(app: web.Application, consult_id: str, grant: asyncpg.Record) -> None:
    """The doctor behind the grant may join the room now (`signaling.access`); the recorder, a server peer,
    while the room is open (the room then asks for every doctor's consent)."""
    subject = consults.subject_of(grant)
    try:
        if grant["session_id"] is None:
            if not subject.state.has_room:
                raise RoomClosed(f"a {subject.state.value} consult has no room")
        else:
            access.require(subject, _person(grant), Action.JOIN)
    except RoomClosed:
        # The database is ahead of the event that closes the room: refuse now, not after the bus catches up.
        app[ROOMS].close(consult_id, "ended")
        raise


def _person(row: asyncpg.Record) -> access.Person:
    return consults.person(row["user_id"], row["role"], row["user_facility"], row["specialties"])


async def serve(request: web.Request) -> web.WebSocketResponse:
    app = request.app
    consult_id = request.match_info["id"]
    early = _handshake_join(request)
    admitted: tuple[LiveRoom, asyncpg.Record] | Refusal | None = None
    # Joining reads the database: while it is unreachable, refuse the upgrade (503, Retry-After) rather than accept and
    # drop. A join in the handshake is read now, and that read tells as much.
    if early is None:
        await app[POOL].execute("SELECT 1")
    elif not isinstance(early, InvalidMessage):
        admitted = await _admission(request, consult_id, early[0])
    # No permessage-deflate: signaling messages are small, and a deflate context costs ~100 KiB a socket.
    relayed = bool(request.headers.get(RELAYED_HEADER))  # read before the upgrade lets go of the headers
    ws = LiveSocket(
        heartbeat=app[CONFIG].consult.heartbeat_s, max_msg_size=MAX_FRAME_BYTES, compress=False,
        protocols=() if early is None else (handshake_join.PROTOCOL,),
    )
    await upgrade(ws, request)
    return ws.live(functools.partial(_serve_upgraded, request, ws, consult_id, relayed, early, admitted))


async def _serve_upgraded(
    request: web.Request, ws: web.WebSocketResponse, consult_id: str, relayed: bool,
    early: tuple[Join, str] | InvalidMessage | None, admitted: tuple[LiveRoom, asyncpg.Record] | Refusal | None,
) -> None:
    """The socket's life, once the handler has returned it (`server.upgraded`); ``early``, a join from the
    handshake, and ``admitted``, what reading it gave."""
    app = request.app
    app[WEBSOCKETS].add(ws)
    app[METRICS].socket("room", +1)
    try:
        if isinstance(early, InvalidMessage):
            await _refuse(ws, early, CLOSE_BAD_JOIN)
            return
        first = early or await _first_message(ws, app[CONFIG].consult.join_timeout_s)
        if first is None:
            return
        join, frame = first
        try:
            admitted = admitted or await _admission(request, consult_id, join)
            if isinstance(admitted, Exception):
                raise admitted
            live, grant = admitted
            member, result = _join(app, live, grant, join)
        except OwnedElsewhere as elsewhere:
            if relayed:  # relayed here, but the room moved on: never relay twice
                await ws.close(code=TRY_AGAIN, message=b"the room moved; try again")
            else:
                app[METRICS].room_relays.inc()
                await relay(ws, elsewhere.url, consult_id, frame, MAX_FRAME_BYTES)
            return
        except SignalingError as exc:
            await _refuse(ws, exc, CLOSE_CODES.get(type(exc), CLOSE_BAD_JOIN))
            return
        conn = Connection(ws, member, result.generation)
        app[METRICS].room_joins.inc()
        guard = None
        if grant["session_id"] is not None:  # the recorder has no session
            guard = app[REVOCATIONS].guard(grant["session_id"], grant["session_expires_at"], conn.session_ended)
        chats = PendingChats()
        try:
            if guard is None or guard.ended is None:  # else revoked while joining: closed, never welcomed
                await _welcome(app, live, conn, join, result)
                # What only the join needed (its frame, the grant, the welcome) is not kept for the socket's life.
                del early, admitted, first, join, frame, grant, result
                # Read in this coroutine, not in one of its own: an idle socket keeps one coroutine's frame fewer.
                limits = socket_limits.room_limits(app[CONFIG].limits)
                while (msg := await ws.receive()).type not in ENDED:
                    if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                        continue
                    try:
                        data = _decode(msg.data)
                    except InvalidMessage as exc:
                        data = exc
                    if (refusal := limits.over(data)) is not None:
                        await chats.wait_below(1)  # the chats before it are answered first
                        conn.send(Error(code="rate_limited", message=refusal, field="type"))
                        conn.close(socket_limits.CLOSE_CODE, socket_limits.CLOSE_REASON.decode())
                        break
                    try:
                        if isinstance(data, InvalidMessage):
                            raise data
                        await _handle(app, live, conn, parse_client(data), (msg.data, data), guard, chats)
                    except NotJoined:
                        break  # replaced by a newer connection, which is being closed
                    except SignalingError as exc:
                        conn.send(error_reply(exc, chat_id_of(data)))  # a chat's sender learns which of its chats was refused
        finally:
            await chats.wait_below(1)  # a chat sent just before leaving is relayed once stored, as if read alone
            if guard is not None:
                guard.release()
            ended = guard is not None and guard.ended is not None  # its close may still be queued
            away = not ended and (conn.closing or ws.close_code) not in DELIBERATE_CLOSES
            left = live.room.leave(member, conn.generation, consults.now(), away=away)
            if live.connections.get(member) is conn:
                del live.connections[member]
            if left is not None:
                live.deliver(left.deliveries)
                if away:
                    app[ROOMS].after_grace(live, member, conn.generation)
            await conn.finish()
    finally:
        app[WEBSOCKETS].discard(ws)
        app[METRICS].socket("room", -1)


async def _welcome(app: web.Application, live: LiveRoom, conn: Connection, join: Join, result: JoinResult) -> None:
    """Send what the join decided: the welcome, the queued messages, the others' deliveries; store its consent."""
    hub = app[ROOMS]
    consult_id = live.room.consult_id
    member = conn.member
    # Everything the join decided is queued before any await, so nothing overtakes the welcome.
    old = live.connections.get(member)
    if old is not None and result.replaced is not None:
        old.close(CLOSE_REPLACED, "replaced")
    live.connections[member] = conn
    conn.send(result.welcome)
    for message in result.backlog:
        conn.send(message)
    live.deliver(result.deliveries)
    hub.recording(consult_id, result.recording)
    if join.consent_recording is not None and member != RECORDER:
        await _store_consent(app, consult_id, member, join.consent_recording)
    if result.session_started:
        hub.start_session(consult_id)


async def _handle(
    app: web.Application, live: LiveRoom, conn: Connection, message: ClientMessage, sent: Sent, guard: Guard | None,
    chats: PendingChats,
) -> None:
    room, member = live.room, conn.member
    if chats:  # nothing overtakes a chat
        await chats.wait_below(pending_chats.LIMIT if isinstance(message, Chat) else 1)
    if guard is not None:
        if guard.ended is None and isinstance(message, Consent):
            await guard.confirm(app[POOL])  # stored: re-read the session first (a chat's is re-read as it is stored)
        if guard.ended is not None:
            raise TokenRejected("the session that asked for this token has ended; sign in again")
    if isinstance(message, Ping):
        conn.send(Pong())
        return
    if isinstance(message, Join):
        raise InvalidMessage("type", "already joined; open a new connection to rejoin")
    if isinstance(message, Consent):
        consent = room.set_consent(member, conn.generation, message.recording, consults.now())
        await _store_consent(app, room.consult_id, member, message.recording)
        live.deliver(consent.deliveries)
        app[ROOMS].recording(room.consult_id, consent.recording)
        return
    if isinstance(message, Chat) and member == RECORDER:
        raise InvalidMessage("type", "the recorder does not chat")
    if isinstance(message, Chat):
        consult_chat.check_size(message.text, app[CONFIG].limits.chat_max_bytes)
        room.addressees(member, conn.generation, message)  # a chat the room would refuse is not stored
        stored = app[ROOMS].chats.submit(room.consult_id, member, message.id, message.text,
                                         None if guard is None else guard.session_id)
        chats.add(stored, lambda done: _chat_stored(app, live, conn, message, sent, guard, done))
        return
    live.deliver(room.route(member, conn.generation, message, consults.now()), sent)


def _chat_stored(app: web.Application, live: LiveRoom, conn: Connection, message: Chat, sent: Sent, guard: Guard | None,
                 stored: asyncio.Future[int]) -> None:
    """Tell its sender a chat is stored and relay it (again, if it was sent again: recipients show one message per
    sender and id), or tell its sender why it was not stored."""
    room = live.room
    try:
        stored.result()
    except consult_chat.SessionEnded:
        if guard is not None:  # only a guarded sender has a session to end
            guard.end(REVOKED)
        conn.send(error_reply(TokenRejected("the session that asked for this token has ended; sign in again"), message.id))
        return
    except RoomClosed as exc:
        # The consult ended in the database before its event reached this process: say why, then close the room.
        conn.send(error_reply(exc, message.id))
        app[ROOMS].close(room.consult_id, "ended")
        return
    except SignalingError as exc:
        conn.send(error_reply(exc, message.id))
        return
    except consult_chat.NotStored as exc:
        conn.send(Error(code=NOT_STORED, message=str(exc), field="text", chat=message.id))
        return
    except consult_chat.OutcomeUnknown as exc:
        conn.send(Error(code=OUTCOME_UNKNOWN, message=str(exc), field="id", chat=message.id))
        return
    conn.send_text(chat_stored_text(message.id))
    if room.closed:
        return  # stored; the consult ended while it was: nobody is left to relay it to
    try:
        live.deliver(room.route(conn.member, conn.generation, message, consults.now()), sent)
    except NotJoined:
        pass  # stored; its sender was replaced meanwhile, and the new connection goes on


async def _actor(con: asyncpg.Connection, member: UserId) -> audit.Actor:
    username = await con.fetchval("SELECT username FROM users WHERE id = $1", int(member))
    return audit.Actor(int(member), username)


async def _store_consent(app: web.Application, consult_id: str, member: UserId, consent: bool) -> None:
    async with app[POOL].acquire() as con, con.transaction():
        await con.execute(
            """INSERT INTO consult_consents (consult_id, user_id, consent) VALUES ($1, $2, $3)
               ON CONFLICT (consult_id, user_id) DO UPDATE SET consent = $3, at = now()""",
            uuid.UUID(consult_id), int(member), consent,
        )
        await audit.record(con, await _actor(con, member), "consult.consent", f"consult:{consult_id}", {"recording": consent})
        await events.append(
            con, "consult.consent", {"id": consult_id, "user": int(member), "recording": consent},
            {f"consult:{consult_id}", f"user:{member}"},
        )
