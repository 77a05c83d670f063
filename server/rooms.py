"""The consult video rooms of this process: a registry of `signaling.room.Room`s and their sockets.

A consult's room lives in the memory of one process, built from PostgreSQL on first
use (the consult, its stored join grants and recording consents). With several
processes, the first one a member reaches claims the room (`server.room_owners`);
the others relay their members' sockets to it (`server.room_relay`), so a load
balancer may send any member to any process. Join tokens may be issued by any
process: the grant is read from the database at join. A room is closed when its
consult completes, is cancelled or expires (seen on the event bus, so it works
whichever process made the change).

The websocket protocol itself is in `server.room_socket`. When every doctor
consents to recording the hub calls ``app[RECORDER_HOOK](app, consult_id)``; when
consent is withdrawn while the recorder is in the room, or the room closes with the
recorder in it, ``app[RECORDER_STOP_HOOK](app, consult_id)``. The recorder joins
with a token from `issue_recorder_token` as member ``recorder``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from typing import Any

import asyncpg
from aiohttp import WSCloseCode, web

from server import audit, consults, outages, room_admission, room_frames
from server.bus import EventBus
from server.config import Config
from server.consult_chat import ChatWriter
from server.keys import BUS, CONFIG, METRICS, POOL, RECORDER_HOOK, RECORDER_STOP_HOOK, ROOMS
from server.revocation import CLOSE_SESSION_ENDED
from server.room_owners import Nodes
from signaling.errors import RoomClosed
from signaling.forward import forwarded
from signaling.ids import ConsultId, UserId
from signaling.messages import Message, encode
from signaling.room import Delivery, RecordingState, Room
from signaling.tokens import IssuedToken, JoinGrant, issue_join_token
from signaling.turn import IceConfig, IceServer, ice_servers

log = logging.getLogger(__name__)

# The consult is over: the same code as joining a closed room, so peers stop rather than rejoin.
ROOM_ENDED = 4409

RECORDER = UserId("recorder")
SEND_QUEUE_MAX = 1000
ENDING_EVENTS = frozenset({"consult.completed", "consult.cancelled", "consult.expired"})
# The session's start is written this long after both doctors are in (the moment recorded is theirs): its transaction's
# steps would otherwise take this process's turns, and the database's CPU, from their first offer and answer.
SESSION_RECORD_AFTER_S = 0.25


def ice_config(config: Config) -> IceConfig:
    ice = config.ice
    return IceConfig(ice.stun_urls, ice.turn_urls, ice.turn_secret or None, dt.timedelta(seconds=ice.turn_ttl_s))


def ice_for(app: web.Application, member: str, at: dt.datetime) -> tuple[IceServer, ...]:
    """The ICE servers handed to a member now; each TURN entry carries fresh credentials (counted)."""
    servers = ice_servers(ice_config(app[CONFIG]), member, at)
    app[METRICS].turn_credentials.inc(sum(1 for s in servers if s.credential is not None))
    return servers


# A client's frame as received, and what it decoded to.
Sent = tuple[str | bytes, Mapping[str, object]]


@dataclasses.dataclass(frozen=True, slots=True)
class _Close:
    code: int
    reason: str


class Connection:
    """One member's socket. Messages leave in the order they were decided: those decided in one turn of the event
    loop are written together at its end, in one write (`server.room_frames`), while the client keeps up; a task
    writes them only while a close waits or the client is slow (an idle socket holds no task)."""

    __slots__ = ("ws", "member", "generation", "closing", "_pending", "_unwritten", "_writer", "_stopped", "_flush_due")

    def __init__(self, ws: web.WebSocketResponse, member: UserId, generation: int) -> None:
        self.ws = ws
        self.member = member
        self.generation = generation
        self.closing: int | None = None  # the code of the first close the server asked for, sent or still queued
        self._pending: list[str | _Close] = []  # a list, not a deque: an idle socket holds 56 bytes, not 600
        self._unwritten = 0  # queued or in the batch being written
        self._writer: asyncio.Task[None] | None = None
        self._stopped = False  # closed, or the socket is gone: nothing more is written
        self._flush_due = False  # a flush is scheduled for the end of this turn of the loop

    def send(self, message: Message) -> None:
        self.send_text(encode(message))

    def send_text(self, text: str) -> None:
        """Send a message already encoded."""
        if self._unwritten >= SEND_QUEUE_MAX:
            self.close(1013, "too slow")
            return
        self._push(text)

    def session_ended(self, reason: str) -> None:
        """The guard's close (`server.revocation`): the member's session was revoked or expired."""
        self.close(CLOSE_SESSION_ENDED, reason)

    def close(self, code: int, reason: str) -> None:
        if self.closing is None:
            self.closing = code
        self._push(_Close(code, reason))

    def _push(self, item: str | _Close) -> None:
        if self._stopped:
            return
        self._pending.append(item)
        self._unwritten += 1
        if self._writer is None and not self._flush_due:
            self._flush_due = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        """Write what waits in one go, or start the task that writes it when it cannot be written at once."""
        self._flush_due = False
        if self._writer is not None or self._stopped or not self._pending:
            return
        texts = [item for item in self._pending if isinstance(item, str)]
        if len(texts) == len(self._pending) and room_frames.write_at_once(self.ws, texts):
            self._pending = []
            self._unwritten -= len(texts)
            return
        self._writer = asyncio.create_task(self._write(), name=f"room-writer-{self.member}")

    async def finish(self) -> None:
        """Write what waits (for up to 5 s), then stop."""
        if self._flush_due:
            self._flush()
        writer = self._writer
        if writer is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(writer), 5)
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
        self._stopped = True
        self._pending.clear()

    async def _write(self) -> None:
        try:
            while self._pending and not self._stopped:
                batch, self._pending = self._pending, []
                for item in batch:
                    try:
                        if isinstance(item, _Close):
                            self._stopped = True
                            await self.ws.close(code=item.code, message=item.reason.encode())
                        else:
                            await self.ws.send_str(item)
                    except (ConnectionResetError, RuntimeError):
                        self._stopped = True  # the socket is gone; its reader ends the handler
                    self._unwritten -= 1
                    if self._stopped:
                        break
        finally:
            self._writer = None


class LiveRoom:
    """A `Room` and the connections of its present members."""

    def __init__(self, room: Room) -> None:
        self.room = room
        self.connections: dict[UserId, Connection] = {}

    def deliver(self, deliveries: tuple[Delivery, ...] | list[Delivery], sent: Sent | None = None) -> None:
        """Send each delivery to its member's connection; ``sent``: the client's frame the deliveries relay, and what
        it decoded to (forwarded as `signaling.forward` says)."""
        for d in deliveries:
            conn = self.connections.get(d.recipient)
            if conn is not None and conn.generation == d.generation:
                conn.send_text(encode(d.message) if sent is None else forwarded(d.message, *sent))


class OwnedElsewhere(Exception):
    """Another live process holds this room; relay the member there."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.url = url


class RoomHub:
    def __init__(self, app: web.Application) -> None:
        self._app = app
        self._rooms: dict[str, LiveRoom] = {}
        self._building: dict[str, asyncio.Future[None]] = {}  # rooms being claimed and built, done when they are
        self._tasks: set[asyncio.Task[None]] = set()
        self.nodes = Nodes(app[POOL], app[CONFIG].server)
        self.chats = ChatWriter(app[POOL], app[CONFIG].limits.chat_max_stored)
        self._stopping = False

    @property
    def pool(self) -> asyncpg.Pool:
        return self._app[POOL]

    @property
    def open_count(self) -> int:
        return len(self._rooms)

    def loaded(self, consult_id: str) -> LiveRoom | None:
        return self._rooms.get(consult_id)

    async def admit(
        self, consult_id: str, url: str, digest: bytes, judge: Callable[[asyncpg.Record | None], None]
    ) -> tuple[LiveRoom, asyncpg.Record]:
        """The live room of an accepted or in-session consult, and the join grant of ``digest`` (`server.room_admission`)
        once ``judge`` let it in (it raises otherwise). The room is built from the database on first use and claimed
        for this process, reached by the others at ``url``; `OwnedElsewhere` when a live process holds it."""
        try:
            uuid.UUID(consult_id)
        except ValueError:
            judge(await room_admission.read_grant(self.pool, digest))  # a bad token is refused as such first
            raise RoomClosed("no such consult") from None
        while True:
            live = self._rooms.get(consult_id)
            building = self._building.get(consult_id)
            if live is None and building is None:
                return await self._build(consult_id, url, digest, judge)
            grant = await room_admission.read_grant(self.pool, digest)  # beside a build under way, not after it
            judge(grant)
            assert grant is not None  # judged
            if building is not None:
                await asyncio.shield(building)
                live = self._rooms.get(consult_id)
            if live is not None:
                return live, grant
            # The build failed (refused, or the room is held elsewhere): take the room as any first member does.

    async def _build(
        self, consult_id: str, url: str, digest: bytes, judge: Callable[[asyncpg.Record | None], None]
    ) -> tuple[LiveRoom, asyncpg.Record]:
        """Claim and build a room this process does not hold, reading the grant in the claim's statement; the claim
        is taken only for a live grant of this room, and let go again when ``judge`` refuses it."""
        building = self._building[consult_id] = asyncio.get_running_loop().create_future()
        try:
            try:
                owner, row = await self.nodes.claim(
                    consult_id, url, room_admission.room_and_grant(ROOM_STATE), digest, only_if=room_admission.GRANT_ADMITS
                )
            except asyncpg.ForeignKeyViolationError:
                raise RoomClosed("no such consult") from None
            grant = row
            try:
                judge(grant if room_admission.presented(grant) else None)
            except Exception:
                if row["won"]:
                    await self.nodes.release(consult_id)
                raise
            if owner is not None:
                raise OwnedElsewhere(owner)
            if not row["won"]:  # a live grant of another consult: the room refuses it once built
                try:
                    owner, row = await self.nodes.claim(consult_id, url, ROOM_STATE)
                except asyncpg.ForeignKeyViolationError:
                    raise RoomClosed("no such consult") from None
                if owner is not None:
                    raise OwnedElsewhere(owner)
            try:
                live = build(row)
            except Exception:
                await self.nodes.release(consult_id)
                raise
            self._rooms[consult_id] = live
            return live, grant
        finally:
            del self._building[consult_id]
            building.set_result(None)

    def close(self, consult_id: str, reason: str, code: int = ROOM_ENDED) -> None:
        """Close a room: with ``ROOM_ENDED`` (final: the consult is over) or 1001 (this server is going away)."""
        live = self._rooms.pop(consult_id, None)
        if live is None:
            return
        recorder_present = RECORDER in live.room.present
        for member, _generation in live.room.close():
            conn = live.connections.get(member)
            if conn is not None:
                conn.close(code, reason)
        if recorder_present:
            self.spawn_hook(RECORDER_STOP_HOOK, consult_id)
        if not self._stopping:  # when stopping, the node's leave() drops every claim at once
            self._spawn(self.nodes.release(consult_id), f"room-release-{consult_id}")

    def start_session(self, consult_id: str) -> None:
        """Both doctors are in the room for the first time: record it beside the sockets, whose first offer and
        answer follow their welcomes at once and must not wait for this transaction, nor share the machine with it."""
        at = consults.now()

        async def start() -> None:
            await asyncio.sleep(SESSION_RECORD_AFTER_S)
            async with self.pool.acquire() as con:
                await consults.start_session(con, consult_id, at)

        self._spawn(start(), f"room-session-{consult_id}")

    def after_grace(self, live: LiveRoom, member: UserId, generation: int) -> None:
        """A member's socket dropped: tell the others it left unless it rejoins within ``consult.rejoin_grace_s``."""
        async def expire() -> None:
            await asyncio.sleep(self._app[CONFIG].consult.rejoin_grace_s)
            gone = live.room.gone(member, generation, consults.now())
            if gone is not None:
                live.deliver(gone.deliveries)

        self._spawn(expire(), f"room-grace-{live.room.consult_id}")

    def spawn_hook(self, key: web.AppKey[Any], consult_id: str) -> None:
        hook = self._app.get(key)
        if hook is not None:
            self._spawn(hook(self._app, consult_id), f"recorder-hook-{consult_id}")

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(_logged(work, name), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def recording(self, consult_id: str, state: RecordingState) -> None:
        if state.changed and state.allowed:
            self.spawn_hook(RECORDER_HOOK, consult_id)
        if state.stop_recorder:
            self.spawn_hook(RECORDER_STOP_HOOK, consult_id)

    async def watch(self, bus: EventBus) -> None:
        """Close a room when its consult ends, whichever process ended it."""
        while True:
            sub = bus.subscribe({"role:admin"})
            try:
                # A subscriber that fell behind gets no more events: drain, then resubscribe and resync.
                while not (sub.overflowed.is_set() and sub.queue.empty()):
                    event = await sub.queue.get()
                    if event.type in ENDING_EVENTS:
                        self.close(str(event.payload.get("id")), event.type.removeprefix("consult."))
            finally:
                bus.unsubscribe(sub)
            log.warning("room watcher fell behind the event bus; checking every open room")
            for consult_id in list(self._rooms):
                stored = await consults.find(self.pool, consult_id)
                if stored is None or not stored.consult.state.has_room:
                    self.close(consult_id, "ended")

    async def keep_claims(self) -> None:
        """Beat as a node; close the rooms another process claimed while this one was too slow to beat."""
        async def beat() -> None:
            held = list(self._rooms)  # only rooms claimed before the beat reads the claims
            owned = await self.nodes.beat()
            for consult_id in held:
                if consult_id not in owned:
                    log.warning("room %s is now held by another process; closing it here", consult_id)
                    self.close(consult_id, "moved to another server", WSCloseCode.GOING_AWAY)

        await outages.every(self.nodes.beat_every_s, beat, outages.OutageLog(log, "room owner beat", self._app[METRICS]))

    async def stop(self) -> None:
        self._stopping = True
        for consult_id in list(self._rooms):
            self.close(consult_id, "server shutting down", WSCloseCode.GOING_AWAY)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        # The claims go with the node: the members' next process takes the rooms at once.
        with contextlib.suppress(Exception):
            await self.nodes.leave()


async def _logged(work: Coroutine[Any, Any, None], name: str) -> None:
    try:
        await work
    except Exception:
        log.exception("%s failed", name)


# What a room is built from ($1: its consult): the consult, its stored join grants and recording consents.
ROOM_STATE = f"""SELECT {consults.COLUMNS},
    ARRAY(SELECT row(user_id, consent) FROM consult_consents WHERE consult_id = $1) AS stored_consents,
    ARRAY(SELECT row(member, digest, expires_at) FROM consult_grants WHERE consult_id = $1) AS stored_grants
    FROM consults WHERE id = $1"""


def build(row: asyncpg.Record | None) -> LiveRoom:
    """The live room of a `ROOM_STATE` row."""
    if row is None or row["id"] is None:
        raise RoomClosed("no such consult")
    stored = consults.Stored.from_row(row)
    grants = [JoinGrant(ConsultId(stored.id), UserId(member), bytes(digest), expires_at) for member, digest, expires_at in row["stored_grants"]]
    room = Room.for_consult(
        stored.consult,
        recorder=RECORDER if any(g.user == RECORDER for g in grants) else None,
        consents={UserId(str(user_id)): consent for user_id, consent in row["stored_consents"]},
    )
    for grant in grants:
        room.add_grant(grant)
    return LiveRoom(room)


def grant_of(row: asyncpg.Record) -> JoinGrant:
    """The join grant of a `server.room_admission` read."""
    return JoinGrant(ConsultId(str(row["grant_consult"])), UserId(row["member"]), bytes(row["digest"]), row["grant_expires_at"])


async def hub_context(app: web.Application) -> AsyncIterator[None]:
    """The cleanup_ctx of the room hub (after the event bus)."""
    hub = RoomHub(app)
    app[ROOMS] = hub
    await hub.nodes.beat()  # registered before any room is claimed
    background = [
        asyncio.create_task(hub.watch(app[BUS]), name="room-watcher"),
        asyncio.create_task(hub.keep_claims(), name="room-claims"),
        asyncio.create_task(hub.chats.run(), name="room-chat-writer"),
    ]
    try:
        yield
    finally:
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        await hub.stop()


async def _store_grant(app: web.Application, grant: JoinGrant, actor: audit.Actor, session_id: int | None) -> None:
    async with app[POOL].acquire() as con, con.transaction():
        await con.execute(
            """INSERT INTO consult_grants (consult_id, member, digest, expires_at, session_id) VALUES ($1, $2, $3, $4, $5)
               ON CONFLICT (consult_id, member) DO UPDATE SET digest = $3, expires_at = $4, session_id = $5, issued_at = now()""",
            uuid.UUID(grant.consult_id), grant.user, grant.digest, grant.expires_at, session_id,
        )
        await audit.record(con, actor, "consult.join_token", f"consult:{grant.consult_id}", {"member": grant.user})


def _issue(app: web.Application, consult_id: str, member: UserId, at: dt.datetime) -> IssuedToken:
    return issue_join_token(ConsultId(consult_id), member, at, dt.timedelta(seconds=app[CONFIG].consult.join_token_ttl_s))


async def issue_token(
    app: web.Application, consult_id: str, member: UserId, actor: audit.Actor, session_id: int
) -> tuple[str, dt.datetime]:
    """A join token for a member of an accepted or in-session consult; only its digest is stored.
    A new token replaces the member's older one. It dies with the session that asked for it."""
    issued = _issue(app, consult_id, member, consults.now())
    await _store_grant(app, issued.grant, actor, session_id)
    live = app[ROOMS].loaded(consult_id)
    if live is not None:
        live.room.add_grant(issued.grant)
    return issued.token, issued.grant.expires_at


async def issue_recorder_token(app: web.Application, consult_id: str) -> str:
    """A join token for the server's recorder (an aiortc peer joining as member ``recorder``).
    The recorder may join only while every doctor consents (else ``recording_not_allowed``)."""
    live = app[ROOMS].loaded(consult_id)
    if live is None:
        raise RoomClosed("the room is not open in this process")
    live.room.set_recorder(RECORDER)
    issued = _issue(app, consult_id, RECORDER, consults.now())
    await _store_grant(app, issued.grant, audit.Actor(None, "recorder"), None)
    live.room.add_grant(issued.grant)
    return issued.token


async def add_recording(
    pool: asyncpg.Pool, consult_id: str, path: str, started_at: dt.datetime, ended_at: dt.datetime | None, size: int | None
) -> int:
    """Link a recording file to its consult (for the recorder)."""
    async with pool.acquire() as con, con.transaction():
        rec_id: int = await con.fetchval(
            """INSERT INTO consult_recordings (consult_id, path, started_at, ended_at, bytes)
               VALUES ($1, $2, $3, $4, $5) RETURNING id""",
            uuid.UUID(consult_id), path, started_at, ended_at, size,
        )
        await audit.record(con, audit.Actor(None, "recorder"), "consult.recording", f"consult:{consult_id}", {"path": path})
    return rec_id
