"""What a join reads from PostgreSQL: the join grant a token names, with the session behind it and what the access
rules judge it by, and, for the first member of a room this process has not built yet, the room itself.

A join is on the critical path of every call (the first offer waits for it), so it reads in as few round trips as
it can: a member joining a built room reads its grant (one statement); the first member of a fresh room claims the
room and reads the room and its own grant in one statement (`server.room_owners.Nodes.claim`), the claim taken only
when that grant is live and names this consult; a member arriving while the room is being built reads its grant
beside the build instead of after it.
"""

from __future__ import annotations

import asyncpg

from server import sessions

# The grant of a token's digest and the session behind it; the grant's column names say so where a room's read
# (`ROOM_STATE`) has the same (``expires_at``, ``id``).
_GRANT_COLUMNS = f"""g.consult_id AS grant_consult, g.member, g.digest, g.expires_at AS grant_expires_at, g.session_id,
    u.id AS user_id, u.role, u.facility_code AS user_facility, u.specialties,
    s.expires_at AS session_expires_at, g.session_id IS NULL OR ({sessions.LIVE}) AS live"""
_GRANT_SESSION = "LEFT JOIN sessions s ON s.id = g.session_id LEFT JOIN users u ON u.id = s.user_id"

# A grant ($1: the token's digest) with the consult it names as `server.consults.subject_of` reads it.
GRANT = f"""SELECT {_GRANT_COLUMNS}, c.state, c.requester, c.facility_code, c.specialty, c.specialist
    FROM consult_grants g JOIN consults c ON c.id = g.consult_id {_GRANT_SESSION}
    WHERE g.digest = $1"""

# The room of consult $1 (`ROOM_STATE`'s columns) and the grant of digest $5 (`GRANT`'s, the consult's own columns
# being the room's), one row even when neither exists.
ROOM_AND_GRANT = """SELECT room.*, grant_read.* FROM (SELECT) AS one
    LEFT JOIN ({room}) AS room ON true
    LEFT JOIN (SELECT {grant} FROM consult_grants g {session} WHERE g.digest = $5) AS grant_read ON true"""

# The claim of a fresh room is taken only for a live grant of that room ($1: the consult, $5: the digest).
GRANT_ADMITS = f"""EXISTS (SELECT FROM consult_grants g {_GRANT_SESSION}
    WHERE g.digest = $5 AND g.consult_id = $1 AND (g.session_id IS NULL OR ({sessions.LIVE})))"""


def room_and_grant(room_state: str) -> str:
    """`ROOM_AND_GRANT` around a room's read (which takes the consult as ``$1``)."""
    return ROOM_AND_GRANT.format(room=room_state, grant=_GRANT_COLUMNS, session=_GRANT_SESSION)


async def read_grant(pool: asyncpg.Pool, digest: bytes) -> asyncpg.Record | None:
    return await pool.fetchrow(GRANT, digest)


def presented(row: asyncpg.Record | None) -> bool:
    """Whether a row of `GRANT` or `ROOM_AND_GRANT` holds a grant."""
    return row is not None and row["grant_consult"] is not None
