"""The consult repository: load and store consults, apply the pure core's decisions.

The lifecycle rules live in `signaling.consult` and `signaling.routing`; this module
only reads rows into `Consult` records, asks the record for its next value, and
commits it. Every state change is one transaction holding the conditional UPDATE
(``WHERE state = <the state the decision was made from>``, so a concurrent change
makes it a 409, never a lost update), its event and its audit row.

Event payloads carry no patient data: clients read the consult itself, and that
read is audited.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import asyncpg

from server import audit, events, oncall
from server.config import ConsultSettings
from server.errors import Conflict, NotFound
from server.roles import Role
from server.routing import choice
from server.users import User
from signaling import access, routing
from signaling.consult import Consult, ConsultState, ServiceType
from signaling.errors import IllegalTransition
from signaling.ids import ConsultId, UserId
from signaling.outcome import Outcome
from signaling.patient import PatientSummary
from signaling.specialty import Specialty
from signaling.urgency import DeadlinePolicy, Urgency, UrgencyTimes

# The doctors' and the facility's names come along, so every page can say who is on the other end.
COLUMNS = """id, requester, facility_code, specialty, service, urgency, patient, state, specialist,
    requested_at, respond_by, expires_at, accepted_at, started_at, ended_at, escalated_at,
    outcome, cancelled_by, cancel_reason,
    (SELECT coalesce(nullif(u.display_name, ''), u.username) FROM users u WHERE u.id = consults.requester) AS requester_name,
    (SELECT coalesce(nullif(u.display_name, ''), u.username) FROM users u WHERE u.id = consults.specialist) AS specialist_name,
    (SELECT f.name FROM facilities f WHERE f.code = consults.facility_code) AS facility_name"""


def member_id(user: User) -> UserId:
    return UserId(str(user.id))


_ROLES = {Role.PUSKESMAS: access.Role.PUSKESMAS, Role.SPECIALIST: access.Role.SPECIALIST, Role.ADMIN: access.Role.ADMIN}


def person(user_id: int, role: str, facility: str | None, specialties: Iterable[str]) -> access.Person:
    """A user as `signaling.access` judges them."""
    return access.Person(UserId(str(user_id)), _ROLES.get(Role(role), access.Role.OTHER), facility, frozenset(specialties))


def person_of(user: User) -> access.Person:
    return person(user.id, user.role, user.facility_code, user.specialties)


def subject_of(row: asyncpg.Record) -> access.Subject:
    """A consults row (state, requester, facility_code, specialty, specialist) as `signaling.access` sees it."""
    specialist = row["specialist"]
    return access.Subject(
        ConsultState(row["state"]), UserId(str(row["requester"])), row["facility_code"], row["specialty"],
        None if specialist is None else UserId(str(specialist)),
    )


def policy(settings: ConsultSettings) -> DeadlinePolicy:
    def times(urgency: str) -> UrgencyTimes:
        return UrgencyTimes(
            timedelta(seconds=getattr(settings, f"{urgency}_respond_s")),
            timedelta(seconds=getattr(settings, f"{urgency}_expire_s")),
        )

    return DeadlinePolicy(times("emergency"), times("urgent"), times("routine"))


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclasses.dataclass(frozen=True, slots=True)
class Stored:
    """A consult as stored: the domain record plus the requesting facility and the names to show."""

    consult: Consult
    facility: str
    names: dict[str, str | None]  # requester, specialist, facility

    @property
    def id(self) -> str:
        return self.consult.id

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> Stored:
        def user(column: str) -> UserId | None:
            return None if row[column] is None else UserId(str(row[column]))

        consult = Consult(
            id=ConsultId(str(row["id"])),
            requester=UserId(str(row["requester"])),
            specialty=Specialty(row["specialty"]),
            service=ServiceType(row["service"]),
            urgency=Urgency(row["urgency"]),
            patient=PatientSummary.from_dict(row["patient"]),
            requested_at=row["requested_at"],
            respond_by=row["respond_by"],
            expires_at=row["expires_at"],
            state=ConsultState(row["state"]),
            specialist=user("specialist"),
            accepted_at=row["accepted_at"],
            started_at=row["started_at"],
            ended_at=row["ended_at"],
            outcome=None if row["outcome"] is None else Outcome.from_dict(row["outcome"]),
            escalated_at=row["escalated_at"],
            cancelled_by=user("cancelled_by"),
            cancel_reason=row["cancel_reason"],
        )
        names = {key: row[f"{key}_name"] for key in ("requester", "specialist", "facility")}
        return cls(consult, row["facility_code"], names)

    def subject(self) -> access.Subject:
        return access.Subject.of(self.consult, self.facility)

    def require(self, user: User, action: access.Action) -> access.Relation:
        """Why ``user`` may take ``action`` on this consult now; raises the refusal (`signaling.access`)."""
        return access.require(self.subject(), person_of(user), action)

    def summary(self) -> dict[str, Any]:
        """What events say about a consult: no patient data."""
        c = self.consult
        return {
            "id": c.id, "state": c.state.value, "specialty": c.specialty.value, "service": c.service.value,
            "urgency": c.urgency.value, "facility": self.facility, "requester": int(c.requester),
            "specialist": None if c.specialist is None else int(c.specialist),
            **{f"{key}_name": name for key, name in self.names.items()},
            "respond_by": c.respond_by.isoformat(), "expires_at": c.expires_at.isoformat(),
        }

    def wire(self, at: dt.datetime) -> dict[str, Any]:
        c = self.consult
        return {
            **self.summary(),
            "requested_at": c.requested_at, "accepted_at": c.accepted_at, "started_at": c.started_at,
            "ended_at": c.ended_at, "escalated_at": c.escalated_at,
            "overdue": routing.overdue(c, at),
            "patient": c.patient.to_dict(),
            "outcome": None if c.outcome is None else c.outcome.to_dict(),
            "cancelled_by": None if c.cancelled_by is None else int(c.cancelled_by),
            "cancel_reason": c.cancel_reason,
        }

    def audience(self) -> set[str]:
        c = self.consult
        tags = {f"consult:{c.id}", f"facility:{self.facility}", f"user:{c.requester}", "role:admin"}
        if c.specialist is not None:
            tags.add(f"user:{c.specialist}")
        return tags


async def find(con: asyncpg.Connection | asyncpg.Pool, consult_id: str) -> Stored | None:
    try:
        key = uuid.UUID(consult_id)
    except ValueError:
        return None
    row = await con.fetchrow(f"SELECT {COLUMNS} FROM consults WHERE id = $1", key)
    return None if row is None else Stored.from_row(row)


async def load(con: asyncpg.Connection | asyncpg.Pool, consult_id: str) -> Stored:
    stored = await find(con, consult_id)
    if stored is None:
        raise NotFound(f"no consult {consult_id[:64]!r}")
    return stored


async def admins(con: asyncpg.Connection | asyncpg.Pool) -> tuple[UserId, ...]:
    rows = await con.fetch("SELECT id FROM users WHERE role = 'admin' AND disabled_at IS NULL ORDER BY id")
    return tuple(UserId(str(r["id"])) for r in rows)


def _digest(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


async def create(
    con: asyncpg.Connection, actor: audit.Actor, user: User, body: dict[str, Any], settings: ConsultSettings, at: dt.datetime
) -> tuple[Stored, bool]:
    """The consult for ``body["idempotency_key"]``: made now (True) or the one made before (False)."""
    key = body["idempotency_key"]
    digest = _digest(body)
    existing = await con.fetchrow(
        f"SELECT {COLUMNS}, request_digest FROM consults WHERE idempotency_key = $1", key
    )
    if existing is not None:
        return _retry(existing, user, digest), False
    consult = Consult.request(
        ConsultId(str(uuid.uuid4())), member_id(user),
        choice(Specialty, body["specialty"], "specialty"), choice(ServiceType, body["service"], "service"),
        choice(Urgency, body["urgency"], "urgency"), PatientSummary.from_dict(body["patient"]), at, policy(settings),
    )  # fmt: skip
    async with con.transaction():
        row = await con.fetchrow(
            f"""INSERT INTO consults (id, idempotency_key, request_digest, requester, facility_code, specialty, service,
                    urgency, patient, requested_at, respond_by, expires_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
                ON CONFLICT (idempotency_key) DO NOTHING RETURNING {COLUMNS}""",
            uuid.UUID(consult.id), key, digest, user.id, user.facility_code, consult.specialty.value,
            consult.service.value, consult.urgency.value, consult.patient.to_dict(), consult.requested_at,
            consult.respond_by, consult.expires_at,
        )
        if row is None:  # a concurrent retry with the same key won
            raced = await con.fetchrow(f"SELECT {COLUMNS}, request_digest FROM consults WHERE idempotency_key = $1", key)
            return _retry(raced, user, digest), False
        stored = Stored.from_row(row)
        notice = routing.new_request_notice(consult, await oncall.roster(con), await admins(con))
        audience = {f"consult:{consult.id}", f"facility:{stored.facility}", f"user:{user.id}"}
        audience |= {f"user:{u}" for u in notice.recipients}
        # Specialists who go on call later still see it arrive live in their queue; the admins' page lists every
        # waiting request (the notice picks who must act: the admins only when nobody is on call).
        audience |= {f"specialty:{consult.specialty.value}", "role:admin"}
        await events.append(con, "consult.requested", {**stored.summary(), "unstaffed": notice.unstaffed}, audience)
        await audit.record(con, actor, "consult.request", f"consult:{consult.id}", {"specialty": consult.specialty.value})
    return stored, True


def _retry(row: asyncpg.Record, user: User, digest: str) -> Stored:
    if row["requester"] != user.id or row["request_digest"] != digest:
        raise Conflict("this idempotency_key was used for a different request", field="idempotency_key")
    return Stored.from_row(row)


async def commit(
    con: asyncpg.Connection,
    before: Stored,
    after: Consult,
    actor: audit.Actor,
    event: str,
    *,
    audience: Iterable[str] = (),
    detail: dict[str, Any] | None = None,
) -> Stored:
    """Store ``after`` if the consult is still in ``before``'s state, with its event and audit row."""
    async with con.transaction():
        row = await con.fetchrow(
            f"""UPDATE consults SET state = $3, specialist = $4, accepted_at = $5, started_at = $6, ended_at = $7,
                    outcome = $8, cancelled_by = $9, cancel_reason = $10
                WHERE id = $1 AND state = $2 RETURNING {COLUMNS}""",
            uuid.UUID(after.id), before.consult.state.value, after.state.value,
            None if after.specialist is None else int(after.specialist),
            after.accepted_at, after.started_at, after.ended_at,
            None if after.outcome is None else after.outcome.to_dict(),
            None if after.cancelled_by is None else int(after.cancelled_by), after.cancel_reason,
        )
        if row is None:
            raise Conflict(f"the consult is no longer {before.consult.state.value}", field="state")
        stored = Stored.from_row(row)
        await events.append(con, event, stored.summary(), stored.audience() | set(audience))
        await audit.record(con, actor, event, f"consult:{after.id}", detail)
    return stored


async def accept(con: asyncpg.Connection, actor: audit.Actor, user: User, consult_id: str, at: dt.datetime) -> Stored:
    before = await load(con, consult_id)
    before.require(user, access.Action.ACCEPT)
    after = before.consult.accept(member_id(user), at)
    # The conditional UPDATE in commit is the atomic part: of concurrent accepts exactly one finds 'requested'.
    return await commit(con, before, after, actor, "consult.accepted", audience={f"specialty:{after.specialty.value}"})


async def decline(con: asyncpg.Connection, actor: audit.Actor, user: User, consult_id: str) -> Stored:
    stored = await load(con, consult_id)
    stored.require(user, access.Action.DECLINE)
    async with con.transaction():
        await con.execute(
            "INSERT INTO consult_declines (consult_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            uuid.UUID(stored.id), user.id,
        )
        await events.append(
            con, "consult.declined", {"id": stored.id, "by": user.id}, {f"consult:{stored.id}", "role:admin", f"user:{user.id}"}
        )
        await audit.record(con, actor, "consult.declined", f"consult:{stored.id}")
    return stored


async def declined_by(con: asyncpg.Connection | asyncpg.Pool, user: User) -> set[str]:
    rows = await con.fetch("SELECT consult_id FROM consult_declines WHERE user_id = $1", user.id)
    return {str(r["consult_id"]) for r in rows}


async def cancel(
    con: asyncpg.Connection, actor: audit.Actor, user: User, consult_id: str, reason: str | None, at: dt.datetime
) -> Stored:
    before = await load(con, consult_id)
    before.require(user, access.Action.CANCEL)
    after = before.consult.cancel(member_id(user), at, reason)
    return await commit(con, before, after, actor, "consult.cancelled", audience={f"specialty:{after.specialty.value}"})


async def complete(
    con: asyncpg.Connection, actor: audit.Actor, user: User, consult_id: str, outcome: dict[str, Any], at: dt.datetime
) -> Stored:
    before = await load(con, consult_id)
    before.require(user, access.Action.COMPLETE)
    after = before.consult.complete(Outcome.submitted(outcome), at)
    assert after.outcome is not None
    return await commit(con, before, after, actor, "consult.completed", detail={"decision": after.outcome.decision.value})


async def start_session(con: asyncpg.Connection, consult_id: str, at: dt.datetime) -> Stored | None:
    """Both doctors are in the room for the first time; None if another process already recorded it."""
    before = await load(con, consult_id)
    try:
        after = before.consult.start_session(at)
        return await commit(con, before, after, audit.Actor(None, "signaling"), "consult.in_session")
    except (IllegalTransition, Conflict):
        return None
