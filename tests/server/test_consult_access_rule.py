"""The list's SQL filter names the same reader as `signaling.access` for every person and every consult,
in a real database."""

from __future__ import annotations

import datetime as dt
import itertools
import uuid

import asyncpg

from server import consults
from server.consult_access import readable_list, reader_of
from server.roles import Role
from server.users import User
from signaling import access
from signaling.consult import ConsultState
from tests.server.test_consults import OUTCOME, PATIENT, add_users

T0 = dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC)
# Who accepted, per state: nobody before acceptance or after expiry; either way for a cancelled one.
SPECIALIST_OPTIONS = {
    ConsultState.REQUESTED: (False,), ConsultState.EXPIRED: (False,), ConsultState.CANCELLED: (False, True),
    ConsultState.ACCEPTED: (True,), ConsultState.IN_SESSION: (True,), ConsultState.COMPLETED: (True,),
}  # fmt: skip


async def _insert(
    con: asyncpg.Connection, state: ConsultState, requester: int, facility: str, specialty: str, specialist: int | None
) -> None:
    accepted = T0 + dt.timedelta(minutes=1) if specialist is not None else None
    ended = T0 + dt.timedelta(minutes=9) if state.terminal else None
    await con.execute(
        """INSERT INTO consults (id, idempotency_key, request_digest, requester, facility_code, specialty, service, urgency,
               patient, state, specialist, requested_at, respond_by, expires_at, accepted_at, started_at, ended_at, outcome)
           VALUES ($1, $2, 'x', $3, $4, $5, 'tele_ekg', 'urgent', $6, $7, $8, $9, $9, $10, $11, $12, $13, $14)""",
        uuid.uuid4(), uuid.uuid4().hex, requester, facility, specialty, PATIENT, state.value, specialist,
        T0, T0 + dt.timedelta(hours=1), accepted,
        T0 + dt.timedelta(minutes=2) if state is ConsultState.IN_SESSION else None, ended,
        OUTCOME if state is ConsultState.COMPLETED else None,
    )


async def test_the_list_filter_and_the_pure_rule_agree_for_every_person_and_consult(
    demo_dsn: str, con: asyncpg.Connection
) -> None:
    a, b = [r["code"] for r in await con.fetch("SELECT code FROM facilities WHERE kind = 'puskesmas' ORDER BY code LIMIT 2")]
    names = [
        *await add_users(demo_dsn, "pa", 1, role="puskesmas", facility=a),
        *await add_users(demo_dsn, "pb", 1, role="puskesmas", facility=b),
        *await add_users(demo_dsn, "sj", 1, specialties=("jantung",)),
        *await add_users(demo_dsn, "sm", 1, specialties=("mata",)),
    ]
    r1, r2, s1, s2 = [await con.fetchval("SELECT id FROM users WHERE username = $1", n) for n in names]
    await con.execute("DELETE FROM consults")
    for state, requester, facility, specialty in itertools.product(ConsultState, (r1, r2), (a, b), ("jantung", "mata")):
        for accepted in SPECIALIST_OPTIONS[state]:
            for specialist in (s1, s2) if accepted else (None,):
                await _insert(con, state, requester, facility, specialty, specialist)
    rows = await con.fetch("SELECT id, state, requester, facility_code, specialty, specialist FROM consults")
    assert len(rows) == 2 * 2 * 2 * 11
    subjects = {str(r["id"]): consults.subject_of(r) for r in rows}

    checked: set[access.Relation | None] = set()
    for role, user_id, facility, specialties in itertools.product(
        Role, (r1, r2, s1, s2, 10**9), (a, b, None), ((), ("jantung",), ("mata",), ("jantung", "mata"))
    ):
        user = User(user_id, "u", "", role, None, facility, specialties, False)
        person = consults.person_of(user)
        want = {cid: access.reader(subject, person) for cid, subject in subjects.items()}
        checked |= set(want.values())
        relation, params = reader_of(user, 1)
        found = {str(r["id"]): r["reader"] for r in await con.fetch(f"SELECT id, {relation} AS reader FROM consults", *params)}
        assert found == {cid: None if w is None else w.value for cid, w in want.items()}, (role, user_id, facility, specialties)
        listed = {s.id for s in await readable_list(con, user, None)}
        assert listed == {cid for cid, w in want.items() if w is not None}
    assert checked == {*access.Relation, None}  # every relation, and no relation, was seen
