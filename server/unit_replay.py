"""How far back a field unit's phone may replay its unit's event stream.

Every dispatch a unit was ever sent is in the event log with its caller's name and
phone number. A phone that resumes with ``?after=0`` (a new phone, or whoever holds
the crew's token) would get all of them. The replay starts instead at the unit's
horizon: the last event before the earlier of "``dispatch.unit_replay_h`` ago" and
the start of the unit's oldest assignment that is still active or ended within that
window. So a phone gets its active and recent assignments whole, and one that was
away for less than the window and resumes from its real last id misses nothing.
"""

from __future__ import annotations

import asyncpg

# ``$1``: the unit, ``$2``: the window in seconds. Ids and times rise together (each event's time is taken as it
# is numbered, at commit), to within a commit.
HORIZON = """SELECT coalesce(max(id), 0) FROM events WHERE at < (
    SELECT least(now() - make_interval(secs => $2), min(assigned_at)) FROM assignments
    WHERE unit_id = $1 AND (ended_at IS NULL OR ended_at > now() - make_interval(secs => $2)))"""


async def horizon(con: asyncpg.Connection | asyncpg.Pool, unit_id: str, window_h: float) -> int:
    """The id of the last event a phone of ``unit_id`` may no longer replay (0: it may replay everything)."""
    return int(await con.fetchval(HORIZON, unit_id, window_h * 3600))
