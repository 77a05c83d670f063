"""Stored consult chat: a message over the size limit is refused, and so is one beyond the consult's stored cap.

At the cap a new message is refused with ``chat_full`` rather than an old one
dropped: the chat is part of the consult's record, and nothing accepted is lost.

Room sockets store chat through one `ChatWriter` a process: the messages waiting
when a transaction starts share it (one commit, four statements, however many
rooms they come from), and each sender's message is relayed only after that
commit. Each message is judged on its own inside the batch: its sender's session
must still be live, the sender may chat in the consult now (`signaling.access`,
the consult's row locked until the batch commits, so it cannot end in between),
and the consult must hold fewer than the cap.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg

from server import consults, sessions
from server.logs import request_id
from signaling import access
from signaling.access import Action
from signaling.errors import ChatFull, InvalidMessage, NotAMember
from signaling.ids import UserId

log = logging.getLogger(__name__)

# At most this many messages share a transaction (its arrays stay small; the rest wait for the next one).
BATCH_MAX = 256
# Transactions under way at once (pool connections): batches of other consults need not wait for a commit. Two
# batches holding one consult queue on its row lock, and count its chat after it, so the cap stays exact.
WRITERS = 3


def check_size(text: str, max_bytes: int) -> None:
    if len(text.encode("utf-8", "surrogatepass")) > max_bytes:
        raise InvalidMessage("text", f"must be at most {max_bytes} bytes of UTF-8 (limits.chat_max_bytes)")


class SessionEnded(Exception):
    """The session behind the sender's join token has ended: nothing was stored."""


@dataclasses.dataclass(frozen=True, slots=True)
class _Pending:
    consult_id: uuid.UUID
    member: UserId
    text: str
    session_id: int | None
    request_id: str
    done: asyncio.Future[int]


class ChatWriter:
    """Stores chat messages in shared transactions; `store` returns once its message is committed."""

    def __init__(self, pool: asyncpg.Pool, max_stored: int) -> None:
        self._pool = pool
        self._max_stored = max_stored
        self._waiting: list[_Pending] = []
        self._wake = asyncio.Event()
        self._stopped = False

    async def store(self, consult_id: str, member: UserId, text: str, session_id: int | None) -> int:
        """The stored message's id, once committed; `ChatFull`, `SessionEnded` or the access refusal if it was not stored."""
        if self._stopped:
            raise _stopping()
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Pending(uuid.UUID(consult_id), member, text, session_id, request_id.get(), done))
        self._wake.set()
        return await done

    async def run(self) -> None:
        """Write batches until cancelled, ``WRITERS`` at a time; then refuse what waits and what comes."""
        try:
            await asyncio.gather(*(self._work() for _ in range(WRITERS)))
        finally:
            self._stopped = True
            waiting, self._waiting = self._waiting, []
            _fail(waiting, _stopping())

    async def _work(self) -> None:
        """Take what waits, store it; a batch whose transaction fails fails each of its senders (nothing was stored)."""
        while True:
            while not self._waiting:
                self._wake.clear()
                await self._wake.wait()
            batch, self._waiting = self._waiting[:BATCH_MAX], self._waiting[BATCH_MAX:]
            try:
                await self._commit(batch)
            except asyncio.CancelledError:
                _fail(batch, _stopping())
                raise
            except Exception as exc:
                log.warning("storing %d chat messages failed: %s", len(batch), type(exc).__name__)
                _fail(batch, exc)

    async def _commit(self, batch: list[_Pending]) -> None:
        outcomes: list[int | Exception] = [RuntimeError("not judged")] * len(batch)
        async with self._pool.acquire() as con, con.transaction():
            accepted = await self._judge(con, batch, outcomes)
            if accepted:
                ids = sorted(await con.fetchval(_INSERT, [batch[i].consult_id for i in accepted],
                                                [int(batch[i].member) for i in accepted], [batch[i].text for i in accepted],
                                                [batch[i].request_id for i in accepted]))
                for index, chat_id in zip(accepted, ids, strict=True):  # identity values follow the insert's order
                    outcomes[index] = chat_id
        for pending, outcome in zip(batch, outcomes, strict=True):
            if pending.done.done():
                continue  # its sender is gone
            if isinstance(outcome, Exception):
                pending.done.set_exception(outcome)
            else:
                pending.done.set_result(outcome)

    async def _judge(self, con: asyncpg.Connection, batch: Sequence[_Pending], outcomes: list[int | Exception]) -> list[int]:
        """The indexes of the messages to store, in order; every other gets its refusal in ``outcomes``."""
        session_ids = [p.session_id for p in batch if p.session_id is not None]
        # A live session comes with its user, as access judges them; a sender without a session is read on its own.
        live = {r["session_id"]: r for r in await con.fetch(_LIVE_SESSIONS, session_ids)} if session_ids else {}
        sessionless = list({int(p.member) for p in batch if p.session_id is None})
        users = {r["user_id"]: r for r in await con.fetch(_USERS, sessionless)} if sessionless else {}
        rooms = {r["id"]: r for r in await con.fetch(_LOCK_CONSULTS, list({p.consult_id for p in batch}))}
        counts: dict[uuid.UUID, int] = {r["consult_id"]: r["count"] for r in await con.fetch(_COUNTS, list(rooms))}
        accepted = []
        for index, pending in enumerate(batch):
            try:
                if pending.session_id is not None and pending.session_id not in live:
                    raise SessionEnded()
                room = rooms.get(pending.consult_id)
                user = users.get(int(pending.member)) if pending.session_id is None else live[pending.session_id]
                if room is None or user is None or user["user_id"] != int(pending.member):
                    raise NotAMember(pending.member)
                access.require(consults.subject_of(room), _person(user), Action.CHAT)
                if counts.get(pending.consult_id, 0) >= self._max_stored:
                    raise ChatFull(f"this consult already holds {self._max_stored} chat messages (limits.chat_max_stored)",
                                   field="text")
            except Exception as exc:
                outcomes[index] = exc
                continue
            counts[pending.consult_id] = counts.get(pending.consult_id, 0) + 1
            accepted.append(index)
        return accepted


def _stopping() -> ConnectionError:
    return ConnectionError("the server is stopping: chat not stored")


def _fail(batch: Sequence[_Pending], exc: BaseException) -> None:
    for pending in batch:
        if not pending.done.done():
            pending.done.set_exception(exc)


def _person(row: Any) -> access.Person:
    return consults.person(row["user_id"], row["role"], row["user_facility"], row["specialties"])


_LIVE_SESSIONS = f"""SELECT s.id AS session_id, u.id AS user_id, u.role, u.facility_code AS user_facility, u.specialties
                      FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = ANY($1::bigint[]) AND {sessions.LIVE}"""
# Locked in one order, so two batches (or a batch and a consult's end) never wait on each other in a circle.
_LOCK_CONSULTS = """SELECT id, state, requester, facility_code, specialty, specialist FROM consults
                    WHERE id = ANY($1::uuid[]) ORDER BY id FOR NO KEY UPDATE"""
_USERS = """SELECT id AS user_id, role, facility_code AS user_facility, specialties FROM users WHERE id = ANY($1::bigint[])"""
_COUNTS = "SELECT consult_id, count(*) AS count FROM consult_chat WHERE consult_id = ANY($1::uuid[]) GROUP BY consult_id"
# The messages and their audit rows in one statement; the ids come back to be matched in the insert's order.
_INSERT = """
WITH given AS (
    SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::text[]) WITH ORDINALITY AS g(consult_id, from_user, text, request_id, n)
), stored AS (
    INSERT INTO consult_chat (consult_id, from_user, text)
    SELECT consult_id, from_user, text FROM given ORDER BY n
    RETURNING id, consult_id, from_user
), audited AS (
    INSERT INTO audit_log (user_id, username, action, object, detail, request_id)
    SELECT s.from_user, u.username, 'consult.chat', 'consult:' || s.consult_id, jsonb_build_object('message', s.id), g.request_id
    FROM stored s JOIN users u ON u.id = s.from_user
    JOIN LATERAL (SELECT request_id FROM given WHERE given.consult_id = s.consult_id AND given.from_user = s.from_user LIMIT 1) g ON true
)
SELECT array_agg(id) FROM stored
"""
