"""Referrals from consults: the request to a hospital, its answer, and what each side reads of it.

A specialist completing a consult with the decision ``refer`` names a hospital (`signaling.referral`);
the completion and the referral request are one transaction, so the hospital's request exists exactly
when the consult says "refer". The hospital (an account bound to it) reads only what is addressed to
it and answers once; the consult's doctors follow the answer on the consult. Events carry no patient
data (pages re-read, and the reads are audited); each goes to the consult's audience and the
receiving hospital's (``facility:<code>``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import asyncpg

from dispatch.errors import InvalidInput
from dispatch.hospitals import parse_service
from server import audit, consult_files, consults, events
from server.consults import Stored
from server.errors import InvalidField, NotFound
from server.users import User
from signaling.referral import FIELD, Answer, ReferralRequest, ReferralState, answer
from signaling.urgency import Urgency

COLUMNS = """id, consult_id, hospital, state, requested_by, requested_at, answered_by, answered_at, decline_reason, incident_id,
    (SELECT f.name FROM facilities f WHERE f.code = referrals.hospital) AS hospital_name"""
# A hospital's list: what is waiting, and the latest answered ones for the shift's handover.
ANSWERED_SHOWN = 50


def audience(stored: Stored, hospital: str) -> set[str]:
    return stored.audience() | {f"facility:{hospital}"}


def _event(row: asyncpg.Record, by: str) -> dict[str, Any]:
    return {"referral_id": str(row["id"]), "consult_id": str(row["consult_id"]), "hospital": row["hospital"],
            "state": row["state"], "by": by}


async def complete(
    con: asyncpg.Connection, actor: audit.Actor, user: User, consult_id: str, outcome: dict[str, Any], at: dt.datetime
) -> Stored:
    """Complete the consult; a referral decision also sends its request to the hospital, in the same transaction."""
    async with con.transaction():
        stored = await consults.complete(con, actor, user, consult_id, outcome, at)
        referral = stored.consult.outcome.referral if stored.consult.outcome else None
        if referral is not None:
            await _request(con, actor, stored, referral)
    return stored


async def _request(con: asyncpg.Connection, actor: audit.Actor, stored: Stored, referral: ReferralRequest) -> None:
    if not await con.fetchval("SELECT 1 FROM facilities WHERE code = $1 AND kind = 'hospital'", referral.hospital):
        raise InvalidField(f"no hospital {referral.hospital!r}", field=f"{FIELD}.hospital")
    try:
        parse_service(referral.service, f"{FIELD}.service")
    except InvalidInput as exc:
        raise InvalidField(exc.message, field=exc.field) from None
    row = await con.fetchrow(
        f"INSERT INTO referrals (id, consult_id, hospital, requested_by) VALUES ($1, $2, $3, $4) RETURNING {COLUMNS}",
        uuid.uuid4(), uuid.UUID(stored.id), referral.hospital, actor.user_id,
    )
    await events.append(con, "referral.requested", {**_event(row, actor.username), "urgency": referral.urgency.value},
                        audience(stored, referral.hospital))
    await audit.record(con, actor, "referral.request", f"referral:{row['id']}",
                       {"consult": stored.id, "hospital": referral.hospital, "icd10": referral.icd10})


def _key(referral_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(referral_id)
    except ValueError:
        raise NotFound(f"no referral {referral_id[:64]!r}") from None


async def addressed(con: asyncpg.Connection | asyncpg.Pool, referral_id: str, user: User, *, lock: bool = False) -> asyncpg.Record:
    """The referral if it is addressed to ``user``'s hospital; 404 otherwise, so another hospital learns nothing of it."""
    row = await con.fetchrow(
        f"SELECT {COLUMNS} FROM referrals WHERE id = $1 AND hospital = $2 {'FOR UPDATE' if lock else ''}",
        _key(referral_id), user.facility_code,
    )
    if row is None:
        raise NotFound(f"no referral {referral_id[:64]!r}")
    return row


async def reply(
    con: asyncpg.Connection, actor: audit.Actor, user: User, referral_id: str, given: Answer, reason: str | None = None
) -> tuple[asyncpg.Record, Stored]:
    """The hospital's answer; the same answer again changes nothing (a retry), the other one is refused (409)."""
    async with con.transaction():
        row = await addressed(con, referral_id, user, lock=True)
        state, changed = answer(ReferralState(row["state"]), given)
        stored = await consults.load(con, str(row["consult_id"]))
        if changed:
            row = await con.fetchrow(
                f"""UPDATE referrals SET state = $2, answered_by = $3, answered_at = now(), decline_reason = $4
                    WHERE id = $1 RETURNING {COLUMNS}""",
                row["id"], state.value, user.id, reason,
            )
            await events.append(con, f"referral.{state.value}", _event(row, actor.username), audience(stored, row["hospital"]))
            # The reason is clinical free text, kept in the referral (retention replaces it there), not in the audit log.
            await audit.record(con, actor, f"referral.{given.value}", f"referral:{row['id']}", {"consult": stored.id})
    return row, stored


def status(row: asyncpg.Record) -> dict[str, Any]:
    """What the consult's doctors see of their referral: where it went and the hospital's answer."""
    return {
        "id": str(row["id"]), "hospital": row["hospital"], "hospital_name": row["hospital_name"], "state": row["state"],
        "requested_at": row["requested_at"], "answered_at": row["answered_at"], "decline_reason": row["decline_reason"],
        "incident_id": None if row["incident_id"] is None else str(row["incident_id"]),
    }


async def of_consult(con: asyncpg.Connection | asyncpg.Pool, consult_id: str) -> dict[str, Any] | None:
    row = await con.fetchrow(f"SELECT {COLUMNS} FROM referrals WHERE consult_id = $1", uuid.UUID(consult_id))
    return None if row is None else status(row)


async def request_view(con: asyncpg.Connection | asyncpg.Pool, row: asyncpg.Record, stored: Stored) -> dict[str, Any]:
    """The referral request as the hospital reads it: the patient summary, diagnosis, reason, service, urgency,
    the consult's SOAP notes and its attachments, and who sends it."""
    return _view(row, stored, await consult_files.listing(con, stored.id))


def _view(row: asyncpg.Record, stored: Stored, attachments: list[dict[str, Any]]) -> dict[str, Any]:
    outcome = stored.consult.outcome
    assert outcome is not None and outcome.referral is not None  # a referral row exists only for such a consult
    return {
        **status(row), **outcome.referral.to_dict(), "consult_id": stored.id,
        "from": {"facility": stored.facility, **{f"{k}_name": v for k, v in stored.names.items()}},
        "patient": stored.consult.patient.to_dict(), "soap": outcome.soap.to_dict(),
        "attachments": attachments,
    }


async def for_hospital(con: asyncpg.Connection | asyncpg.Pool, user: User) -> list[dict[str, Any]]:
    """The requests addressed to ``user``'s hospital: every waiting one, most urgent then oldest first, then the latest answered."""
    rows = await con.fetch(
        f"""(SELECT {COLUMNS} FROM referrals WHERE hospital = $1 AND state = 'requested')
            UNION ALL
            (SELECT {COLUMNS} FROM referrals WHERE hospital = $1 AND state <> 'requested' ORDER BY answered_at DESC LIMIT $2)""",
        user.facility_code, ANSWERED_SHOWN,
    )
    found = {s.id: s for s in map(Stored.from_row, await con.fetch(
        f"SELECT {consults.COLUMNS} FROM consults WHERE id = ANY($1::uuid[])", [r["consult_id"] for r in rows]))}
    attachments = await consult_files.listings(con, list(found))
    views = [_view(r, found[str(r["consult_id"])], attachments[str(r["consult_id"])]) for r in rows]
    waiting = sorted((v for v in views if v["state"] == "requested"), key=lambda v: (Urgency(v["urgency"]).rank, v["requested_at"]))
    return waiting + [v for v in views if v["state"] != "requested"]
