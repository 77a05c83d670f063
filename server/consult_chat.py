"""Stored consult chat: a message over the size limit is refused, and so is one beyond the consult's stored cap.

At the cap a new message is refused with ``chat_full`` rather than an old one
dropped: the chat is part of the consult's record, and nothing accepted is lost.

Room sockets store chat through one `ChatWriter` a process: the messages waiting
when a transaction starts share it (two statements and one commit, however many
rooms they come from), and each sender's message is relayed only after that commit.
A batch starts once the one before it holds its consults' rows, and a consult's chat
in the later batch waits on that row until the earlier commits: the ids of one
consult's chat follow the order it was sent in. Each message is judged on its own
inside the batch: its sender's session must still be live, the sender may chat in
the consult now (`signaling.access`, the consult's row locked until the batch
commits, so it cannot end in between), and the consult must hold fewer than the cap
(counted by the insert itself, after the lock).

Each message carries the id its sender chose, and one sender's message of one id is stored once: a message
sent again (its answer was lost with the socket, or uncertain) is answered with the id it was stored under, and
is neither stored nor counted again. The consult's row lock orders two batches holding the same id, so the later
one reads the earlier one's row. A batch whose transaction fails before its COMMIT stores none of its messages,
and each sender gets `NotStored`; one whose COMMIT fails (the connection lost while committing) may have been
stored, and each sender gets `OutcomeUnknown`: sending it again with the same id settles it either way.
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

# At most this many messages share a transaction (its arrays stay bounded; the rest wait for the next one).
BATCH_MAX = 256
# Transactions under way at once: the next starts as soon as the one before holds its consults' rows, so it judges
# and inserts while that one commits; a consult in both waits on its row, and its chat keeps the order it came in.
OVERLAP = 2


def check_size(text: str, max_bytes: int) -> None:
    if len(text.encode("utf-8", "surrogatepass")) > max_bytes:
        raise InvalidMessage("text", f"must be at most {max_bytes} bytes of UTF-8 (limits.chat_max_bytes)")


class SessionEnded(Exception):
    """The session behind the sender's join token has ended: nothing was stored."""


class NotStored(ConnectionError):
    """The message's transaction failed (the database went away, the server is stopping): nothing of it was stored."""


class OutcomeUnknown(ConnectionError):
    """The message's COMMIT failed (the connection was lost while committing): it may or may not be stored, and
    sending it again with the same id stores it at most once."""


@dataclasses.dataclass(frozen=True, slots=True)
class _Pending:
    consult_id: uuid.UUID
    member: UserId
    client_id: str
    text: str
    session_id: int | None
    request_id: str
    done: asyncio.Future[int]


class ChatWriter:
    """Stores chat messages in shared transactions; `submit`'s future is done once its message is committed, or
    refused."""

    def __init__(self, pool: asyncpg.Pool, max_stored: int) -> None:
        self._pool = pool
        self._max_stored = max_stored
        self._waiting: list[_Pending] = []
        self._wake = asyncio.Event()
        self._stopped = False

    def submit(self, consult_id: str, member: UserId, client_id: str, text: str,
               session_id: int | None) -> asyncio.Future[int]:
        """The stored message's id once committed (or once found stored before, under the sender's ``client_id``);
        else `ChatFull`, `SessionEnded`, the access refusal, `InvalidMessage` (the id already holds another text),
        `NotStored` (nothing of it was stored) or `OutcomeUnknown`."""
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        if self._stopped:
            done.set_exception(_stopping())
        else:
            self._waiting.append(_Pending(uuid.UUID(consult_id), member, client_id, text, session_id, request_id.get(), done))
            self._wake.set()
        return done

    async def run(self) -> None:
        """Write batches until cancelled; then refuse what waits and what comes."""
        storing: set[asyncio.Task[None]] = set()
        try:
            while True:
                while not self._waiting:
                    self._wake.clear()
                    await self._wake.wait()
                batch, self._waiting = self._waiting[:BATCH_MAX], self._waiting[BATCH_MAX:]
                locked: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                task = asyncio.create_task(self._store(batch, locked), name="chat-batch")
                storing.add(task)
                task.add_done_callback(storing.discard)
                await asyncio.shield(locked)
                while len(storing) >= OVERLAP:
                    await asyncio.wait(storing, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._stopped = True
            for task in storing:
                task.cancel()
            await asyncio.gather(*storing, return_exceptions=True)
            waiting, self._waiting = self._waiting, []
            _fail(waiting, _stopping())

    async def _store(self, batch: list[_Pending], locked: asyncio.Future[None]) -> None:
        """Store ``batch``; a transaction that fails fails each of its senders: `NotStored`, or `OutcomeUnknown` when
        its COMMIT failed (`_commit` answers those first)."""
        try:
            await self._commit(batch, locked)
        except asyncio.CancelledError:
            _fail(batch, _stopping())
            raise
        except Exception as exc:
            log.warning("storing %d chat messages failed: %s", len(batch), type(exc).__name__)
            _fail(batch, NotStored("the chat could not be stored; send it again"))
        finally:
            if not locked.done():
                locked.set_result(None)

    async def _commit(self, batch: list[_Pending], locked: asyncio.Future[None]) -> None:
        outcomes: list[int | Exception] = [RuntimeError("not judged")] * len(batch)
        async with self._pool.acquire() as con:
            committing = False
            try:
                async with con.transaction():
                    accepted = await self._judge(con, batch, outcomes, locked)
                    if accepted:
                        await self._insert(con, batch, accepted, outcomes)
                    committing = True  # what fails from here on is the COMMIT, which may have happened
            except BaseException:
                if committing:
                    # Only what the transaction stored may be there; a message it refused is not, either way.
                    unknown = OutcomeUnknown("the chat may or may not be stored; send it again with the same id")
                    _answer(batch, [outcome if isinstance(outcome, Exception) else unknown for outcome in outcomes])
                raise
        _answer(batch, outcomes)

    async def _insert(self, con: asyncpg.Connection, batch: Sequence[_Pending], accepted: list[int],
                      outcomes: list[int | Exception]) -> None:
        """Store the ``accepted`` messages that are new and fit; each gets its stored id or its refusal. A message
        repeated within the batch (sent again before its answer came) goes to the statement once, and its repeats
        share its outcome."""
        firsts: dict[tuple[uuid.UUID, UserId, str], int] = {}
        repeats: list[tuple[int, int]] = []  # (a repeat, the first of its id in the batch)
        for index in accepted:
            pending = batch[index]
            first = firsts.setdefault((pending.consult_id, pending.member, pending.client_id), index)
            if first != index:
                repeats.append((index, first))
        unique = list(firsts.values())
        rows = await con.fetch(_INSERT, [batch[i].consult_id for i in unique], [int(batch[i].member) for i in unique],
                               [batch[i].client_id for i in unique], [batch[i].text for i in unique],
                               [batch[i].request_id for i in unique], self._max_stored)
        for index in unique:
            outcomes[index] = ChatFull(
                f"this consult already holds {self._max_stored} chat messages (limits.chat_max_stored)", field="text")
        for row in rows:
            outcomes[unique[row["n"] - 1]] = row["id"] if row["same"] else _id_reused()
        for index, first in repeats:
            same = batch[index].text == batch[first].text
            outcomes[index] = outcomes[first] if same or isinstance(outcomes[first], ChatFull) else _id_reused()

    async def _judge(self, con: asyncpg.Connection, batch: Sequence[_Pending], outcomes: list[int | Exception],
                     locked: asyncio.Future[None]) -> list[int]:
        """The indexes of the messages the sender may store, in order; every other gets its refusal in ``outcomes``."""
        rows = await con.fetch(_LOCK_AND_READ, list({p.consult_id for p in batch}),
                               list({p.session_id for p in batch if p.session_id is not None}),
                               list({int(p.member) for p in batch if p.session_id is None}))
        locked.set_result(None)
        subjects = {r["id"]: consults.subject_of(r) for r in rows if r["kind"] == "consult"}
        live = {r["session_id"]: r for r in rows if r["kind"] == "session"}
        users = {r["user_id"]: r for r in rows if r["kind"] == "user"}
        verdicts: dict[tuple[uuid.UUID, int], Exception | None] = {}  # access judged once a batch, by consult and user
        accepted = []
        for index, pending in enumerate(batch):
            try:
                if pending.session_id is not None and pending.session_id not in live:
                    raise SessionEnded()
                subject = subjects.get(pending.consult_id)
                user = users.get(int(pending.member)) if pending.session_id is None else live[pending.session_id]
                if subject is None or user is None or user["user_id"] != int(pending.member):
                    raise NotAMember(pending.member)
                key = (pending.consult_id, user["user_id"])
                if key not in verdicts:
                    verdicts[key] = _refusal(subject, _person(user))
                if (refusal := verdicts[key]) is not None:
                    raise refusal
            except Exception as exc:
                outcomes[index] = exc
                continue
            accepted.append(index)
        return accepted


def _id_reused() -> InvalidMessage:
    return InvalidMessage("id", "already names another message of yours; give a new message a new id")


def _stopping() -> NotStored:
    return NotStored("the server is stopping: chat not stored; send it again")


def _answer(batch: Sequence[_Pending], outcomes: Sequence[int | Exception]) -> None:
    for pending, outcome in zip(batch, outcomes, strict=True):
        if pending.done.done():
            continue  # its sender is gone
        if isinstance(outcome, Exception):
            pending.done.set_exception(outcome)
        else:
            pending.done.set_result(outcome)


def _fail(batch: Sequence[_Pending], exc: BaseException) -> None:
    for pending in batch:
        if not pending.done.done():
            pending.done.set_exception(exc)


def _refusal(subject: access.Subject, person: access.Person) -> Exception | None:
    try:
        access.require(subject, person, Action.CHAT)
    except Exception as exc:
        return exc
    return None


def _person(row: Any) -> access.Person:
    return consults.person(row["user_id"], row["role"], row["user_facility"], row["specialties"])


# One round trip: the batch's consults locked, in one order so that two batches (or a batch and a consult's end)
# never wait on each other in a circle; each live session with its user, as access judges them; and each sender
# without a session (the recorder's grant has none) by its user alone.
_LOCK_AND_READ = f"""
WITH locked AS MATERIALIZED (
    SELECT id, state, requester, facility_code, specialty, specialist FROM consults
    WHERE id = ANY($1::uuid[]) ORDER BY id FOR NO KEY UPDATE
)
SELECT 'consult' AS kind, id, state, requester, facility_code, specialty, specialist, NULL::bigint AS session_id,
       NULL::bigint AS user_id, NULL::text AS role, NULL::text AS user_facility, NULL::text[] AS specialties
FROM locked
UNION ALL
SELECT 'session', NULL, NULL, NULL, NULL, NULL, NULL, s.id, u.id, u.role, u.facility_code, u.specialties
FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = ANY($2::bigint[]) AND {sessions.LIVE}
UNION ALL
SELECT 'user', NULL, NULL, NULL, NULL, NULL, NULL, NULL, id, role, facility_code, specialties
FROM users WHERE id = ANY($3::bigint[])
"""
# The messages and their audit rows in one statement, after the consults' lock (so what it reads is exact), for
# messages of distinct (consult, sender, id): one stored before is answered with its row and not stored again; a
# new one goes in while its consult, with the new messages before it in this batch, holds fewer than the cap ($6).
# The ordinals of those stored or stored before come back with their ids, and whether the text is the one stored
# under that id; one missing is over the cap. The batch's arrays are unnested as subqueries' values: for the
# parameters themselves a custom plan counts a batch's messages (one, mostly) and comes out cheaper on paper than the
# generic plan's ten, so PostgreSQL planned the statement again at every batch (about 0.7 ms each) for the
# same index lookups; a subquery's array is counted alike in both plans, and the generic one is kept.
_INSERT = """
WITH given AS (
    SELECT * FROM unnest((SELECT $1::uuid[]), (SELECT $2::bigint[]), (SELECT $3::text[]), (SELECT $4::text[]), (SELECT $5::text[]))
        WITH ORDINALITY AS g(consult_id, from_user, client_id, text, request_id, n)
), known AS (
    SELECT g.n, c.id, c.text = g.text AS same FROM given g CROSS JOIN LATERAL (
        SELECT id, text FROM consult_chat c
        WHERE c.consult_id = g.consult_id AND c.from_user = g.from_user AND c.client_id = g.client_id LIMIT 1
    ) c
), fresh AS (
    SELECT * FROM given WHERE n NOT IN (SELECT n FROM known)
), held AS (
    SELECT c.consult_id, count(*) AS count FROM consult_chat c
    WHERE c.consult_id IN (SELECT DISTINCT consult_id FROM fresh) GROUP BY c.consult_id
), placed AS (
    SELECT f.*, coalesce(h.count, 0) + row_number() OVER (PARTITION BY f.consult_id ORDER BY f.n) AS place
    FROM fresh f LEFT JOIN held h ON h.consult_id = f.consult_id
), fitting AS (
    SELECT * FROM placed WHERE place <= $6
), stored AS (
    INSERT INTO consult_chat (consult_id, from_user, client_id, text)
    SELECT consult_id, from_user, client_id, text FROM fitting ORDER BY n
    RETURNING id, consult_id, from_user
), numbered AS (
    SELECT s.id, f.n, f.request_id, s.consult_id, s.from_user
    FROM (SELECT id, consult_id, from_user, row_number() OVER (ORDER BY id) AS k FROM stored) s
    JOIN (SELECT n, request_id, row_number() OVER (ORDER BY n) AS k FROM fitting) f ON f.k = s.k
), audited AS (
    INSERT INTO audit_log (user_id, username, action, object, detail, request_id)
    SELECT m.from_user, u.username, 'consult.chat', 'consult:' || m.consult_id, jsonb_build_object('message', m.id), m.request_id
    FROM numbered m JOIN users u ON u.id = m.from_user
)
SELECT n, id, true AS same FROM numbered
UNION ALL
SELECT n, id, same FROM known
"""
