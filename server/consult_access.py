"""Who may read which consult: one rule for the list, the detail, its attachments and its chat.

- A puskesmas doctor reads the consults of their own puskesmas, their colleagues'
  too: the doctor on the next shift takes over the patients waiting for an answer
  and the answers that came in (a referral to arrange, a follow-up to book). A
  consult they requested stays theirs if they move to another puskesmas.
- A specialist reads the consults they accepted, and the requests waiting in their
  specialties (the question and the attachments are what they accept on).
- An admin reads every consult.

Only the consult's two doctors join its video room, and only the requesting doctor
cancels it or adds files (`Stored.is_member`, the handlers). The list carries no
patient data (no patient summary, answer or cancel reason: what the events say,
with the times); each detail, attachment or chat read is audited with the reader's
relation to the consult, so a colleague's read stands out in the audit log.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Any

import asyncpg

from server.consults import COLUMNS, Stored, load
from server.errors import Forbidden
from server.users import User
from signaling import routing
from signaling.consult import ConsultState


class Reader(enum.StrEnum):
    """Why a user may read a consult."""

    REQUESTER = "requester"
    COLLEAGUE = "colleague"
    SPECIALIST = "specialist"
    QUEUE = "queue"
    ADMIN = "admin"


DETAIL_ONLY = ("patient", "outcome", "cancel_reason")


def reader_of(user: User, first: int) -> tuple[str, list[Any]]:
    """The SQL expression (over a consults row) naming ``user``'s `Reader` relation, NULL when they may not read it;
    its parameters are numbered from ``$first``."""
    r, u, f, s = (f"${first + i}" for i in range(4))
    sql = f"""CASE
        WHEN {r}::text = 'admin' THEN 'admin'
        WHEN {r} = 'puskesmas' AND requester = {u}::bigint THEN 'requester'
        WHEN {r} = 'puskesmas' AND facility_code = {f}::text THEN 'colleague'
        WHEN {r} = 'specialist' AND specialist = {u} THEN 'specialist'
        WHEN {r} = 'specialist' AND state = 'requested' AND specialty = ANY({s}::text[]) THEN 'queue'
    END"""
    return sql, [user.role.value, user.id, user.facility_code, list(user.specialties)]


async def load_readable(con: asyncpg.Connection | asyncpg.Pool, consult_id: str, user: User) -> tuple[Stored, Reader]:
    """A consult ``user`` may read, and why; 404 for no such consult, 403 for one they may not read."""
    stored = await load(con, consult_id)
    relation, params = reader_of(user, 2)
    reader = await con.fetchval(f"SELECT {relation} FROM consults WHERE id = $1", uuid.UUID(stored.id), *params)
    if reader is None:
        raise Forbidden("only the consult's doctors, its puskesmas and the admins may see it")
    return stored, Reader(reader)


async def readable_list(con: asyncpg.Connection | asyncpg.Pool, user: User, state: str | None) -> list[Stored]:
    """The consults ``user`` may read, at most 500: waiting requests first in queue order, then newest first."""
    relation, params = reader_of(user, 2)
    rows = await con.fetch(
        f"""SELECT {COLUMNS} FROM consults WHERE ($1::text IS NULL OR state = $1) AND ({relation}) IS NOT NULL
            ORDER BY requested_at DESC LIMIT 500""",
        state, *params,
    )
    found = [Stored.from_row(r) for r in rows]
    by_id = {s.id: s for s in found}
    waiting = routing.waiting_queue(s.consult for s in found)
    rest = [s for s in found if s.consult.state is not ConsultState.REQUESTED]
    return [by_id[c.id] for c in waiting] + rest


def list_entry(stored: Stored, at: dt.datetime) -> dict[str, Any]:
    """What the list says of a consult: its state, people and times; the patient and the answer are in the detail."""
    return {key: value for key, value in stored.wire(at).items() if key not in DETAIL_ONLY}
