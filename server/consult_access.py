"""Reading consults: the list, the detail, its attachments and its chat, by the rule of `signaling.access`.

Who may read, act on or join a consult is decided by `signaling.access` alone; the
list filters in SQL for speed (`reader_of`, the same rule as a CASE over the row;
tests/server/test_consult_access_rule.py proves both agree for every relation and
state). The list carries no patient data (no patient summary, answer or cancel
reason: what the events say, with the times); each detail, attachment or chat read
is audited with the reader's relation to the consult, so a colleague's read stands
out in the audit log.

A consult's attachments are also read by the hospital a referral from it is addressed to
(`attachment_reader`), and only while it is: not by another hospital, not once it declined.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import asyncpg

from server.consults import COLUMNS, Stored, load
from server.errors import Forbidden
from server.roles import Role
from server.users import User
from signaling import routing
from signaling.access import Action, Relation
from signaling.consult import ConsultState

DETAIL_ONLY = ("patient", "outcome", "cancel_reason")
RECEIVING_HOSPITAL = "receiving_hospital"


def reader_of(user: User, first: int) -> tuple[str, list[Any]]:
    """The SQL expression (over a consults row) naming the relation under which ``user`` reads it
    (`signaling.access.reader`), NULL when they may not; its parameters are numbered from ``$first``."""
    r, u, f, s = (f"${first + i}" for i in range(4))
    sql = f"""CASE
        WHEN {r}::text = 'admin' THEN 'admin'
        WHEN {r} = 'puskesmas' AND requester = {u}::bigint THEN 'requester'
        WHEN {r} = 'puskesmas' AND facility_code = {f}::text THEN 'colleague'
        WHEN {r} = 'specialist' AND specialist = {u} THEN 'specialist'
        WHEN {r} = 'specialist' AND state = 'requested' AND specialty = ANY({s}::text[]) THEN 'queue'
    END"""
    return sql, [user.role.value, user.id, user.facility_code, list(user.specialties)]


async def load_readable(con: asyncpg.Connection | asyncpg.Pool, consult_id: str, user: User) -> tuple[Stored, Relation]:
    """A consult ``user`` may read, and why; 404 for no such consult, 403 for one they may not read."""
    stored = await load(con, consult_id)
    return stored, stored.require(user, Action.READ)


async def attachment_reader(con: asyncpg.Connection | asyncpg.Pool, consult_id: str, user: User) -> tuple[Stored, str]:
    """A consult whose attachments ``user`` may read, and why: a reader of the consult, or the hospital its
    referral is addressed to while the referral waits or was accepted."""
    if user.role is not Role.HOSPITAL:
        stored, relation = await load_readable(con, consult_id, user)
        return stored, relation.value
    stored = await load(con, consult_id)
    if not await con.fetchval(
        "SELECT 1 FROM referrals WHERE consult_id = $1 AND hospital = $2 AND state <> 'declined'", uuid.UUID(stored.id), user.facility_code
    ):
        raise Forbidden("this consult is not referred to your hospital")
    return stored, RECEIVING_HOSPITAL


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
