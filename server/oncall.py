"""The on-call roster: which specialists take consult requests for which specialty now."""

from __future__ import annotations

from typing import Any

import asyncpg

from server import audit, events
from server.errors import InvalidField
from server.routing import choice
from server.users import User
from signaling import routing
from signaling.ids import UserId
from signaling.specialty import Specialty


async def roster(con: asyncpg.Connection | asyncpg.Pool) -> routing.OnCallRoster:
    rows = await con.fetch("SELECT user_id, specialty FROM oncall")
    known = {s.value for s in Specialty}
    return routing.OnCallRoster.from_pairs(
        (UserId(str(r["user_id"])), Specialty(r["specialty"])) for r in rows if r["specialty"] in known
    )


async def set_on_call(con: asyncpg.Connection, actor: audit.Actor, user: User, specialty: str, on: bool) -> None:
    code = choice(Specialty, specialty, "specialty")
    if code.value not in user.specialties:
        raise InvalidField(f"you are not registered for {code.value}", field="specialty")
    async with con.transaction():
        if on:
            status = await con.execute(
                "INSERT INTO oncall (user_id, specialty) VALUES ($1, $2) ON CONFLICT DO NOTHING", user.id, code.value
            )
        else:
            status = await con.execute("DELETE FROM oncall WHERE user_id = $1 AND specialty = $2", user.id, code.value)
        if status.endswith(" 0"):
            return  # nothing changed
        payload = {"user": user.id, "specialty": code.value, "on_call": on}
        await events.append(con, "oncall.changed", payload, {"role:admin", f"user:{user.id}", f"specialty:{code.value}"})
        await audit.record(con, actor, "oncall.set", f"user:{user.id}", payload)


async def on_call(con: asyncpg.Connection | asyncpg.Pool, user: User | None) -> list[dict[str, Any]]:
    """``user``'s on-call specialties, or everyone's (None)."""
    rows = await con.fetch(
        """SELECT o.user_id, u.username, coalesce(nullif(u.display_name, ''), u.username) AS display_name, o.specialty, o.since
           FROM oncall o JOIN users u ON u.id = o.user_id
           WHERE $1::bigint IS NULL OR o.user_id = $1 ORDER BY o.specialty, u.username""",
        None if user is None else user.id,
    )
    return [dict(r) for r in rows]
