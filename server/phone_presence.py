"""Whether each field unit's phone is connected, the same answer on every server process.

Each phone socket is a row in ``phone_sockets``. It counts as connected while it is open and
was heard from within ``dispatch.phone_offline_s``: the phone pings every ``dispatch.phone_ping_s``
and any message it sends refreshes the row (at most every third of the expiry; the rows of all
of a process's phones heard from are refreshed together, in one statement every `REFRESH_S`,
so thousands of phones cost one write a second, not one per phone). A socket whose process was
killed, or whose link died without a close, is no longer refreshed and expires; every process sweeps expired rows, and the one that marks a row closed
announces the change. When a unit's phone goes from connected to not, or back, the operators get
one ``unit.phone`` event carrying the unit's snapshot with its ``phone`` (as every unit event
carries the unit), so a console sees it whatever process holds the phone.

Changes for one unit are ordered by a transaction-scoped advisory lock on the unit, always taken
before any row lock here; the unit row is read ``FOR SHARE`` so the snapshot in the event is
never older than a status change committed before it.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Iterable
from typing import Any

import asyncpg
from aiohttp import web

from server import events, outages
from server.config import DispatchSettings
from server.errors import database_unreachable
from server.fleet import UNIT_COLUMNS, unit_snapshot
from server.keys import CONFIG, METRICS, PHONE_REFRESHES, POOL
from server.tasks import cancel_and_wait

log = logging.getLogger(__name__)

OPERATORS = "role:operator"
# How often a process writes the presence of the phones heard from meanwhile: well inside the expiry.
REFRESH_S = 1.0
_LIVE_WITHIN = "closed_at IS NULL AND seen_at > now() - make_interval(secs => {offline_s})"
LIVE = _LIVE_WITHIN.format(offline_s="$2")


def presence_sql(units: str, offline_s: str) -> str:
    """A row (unit_id, last_seen, connected) per unit of ``units`` (SQL, a text array) heard of, connected when seen
    within ``offline_s`` seconds (SQL): a read that another statement can embed (`presence` turns its rows into `phones`)."""
    return f"""SELECT unit_id, max(seen_at) AS last_seen, bool_or({_LIVE_WITHIN.format(offline_s=offline_s)}) AS connected
        FROM phone_sockets WHERE unit_id = ANY({units}) GROUP BY unit_id"""


def presence(rows: Iterable[Iterable[Any]], unit_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """`phones` from the rows `presence_sql` read."""
    found = {unit_id: {"connected": connected, "last_seen": last_seen.isoformat()} for unit_id, last_seen, connected in rows}
    return {unit_id: found.get(unit_id, {"connected": False, "last_seen": None}) for unit_id in sorted(set(unit_ids))}


# The units of `phones` as a subquery's value rather than the parameter itself, so that PostgreSQL keeps one generic
# plan. For the parameter, a custom plan counts the array's units (one to a few here) and comes out cheaper on paper
# than the generic plan's ten, so the read was planned again at every execution (0.11 ms, more than its own run) for
# the same index scan; a subquery's array is counted alike in both.
_UNITS = "(SELECT $1::text[])::text[]"


async def phones(con: asyncpg.Connection | asyncpg.Pool, unit_ids: Iterable[str], offline_s: float) -> dict[str, dict[str, Any]]:
    """``{unit_id: {"connected": bool, "last_seen": ISO time or None}}`` for each of ``unit_ids``."""
    wanted = sorted(set(unit_ids))
    return presence(await con.fetch(presence_sql(_UNITS, "$2"), wanted, offline_s), wanted)


async def with_phones(
    con: asyncpg.Connection | asyncpg.Pool, entries: list[dict[str, Any]], offline_s: float, key: str = "unit_id"
) -> list[dict[str, Any]]:
    """``entries`` (recommendations, board rows), each with its unit's ``phone``."""
    found = await phones(con, (e[key] for e in entries), offline_s)
    return [e | {"phone": found[e[key]]} for e in entries]


def offline_warning(unit_id: str, phone: dict[str, Any]) -> dict[str, Any]:
    """The warning a dispatch answers with when the unit's phone is not connected: the crew will not hear it ring."""
    return {"code": "phone_offline", "unit_id": unit_id, "last_seen": phone["last_seen"],
            "message": "the unit's phone is offline: reach the crew by radio"}


async def _lock(con: asyncpg.Connection, unit_id: str) -> None:
    await con.execute("SELECT pg_advisory_xact_lock(hashtext('phone:' || $1))", unit_id)


async def _connected(con: asyncpg.Connection, unit_id: str, offline_s: float) -> bool:
    # Through `phones`, whose read names the unit alone: a condition on the open sockets' times as well let the
    # planner take the index of every open socket instead, on a table too young to be analyzed, and a phone that
    # connected then read every other phone's row (1,000 open sockets: 500 pages a connect).
    return bool((await phones(con, [unit_id], offline_s))[unit_id]["connected"])


async def _announce(con: asyncpg.Connection, unit_id: str, offline_s: float) -> None:
    row = await con.fetchrow(f"SELECT {UNIT_COLUMNS} FROM units WHERE id = $1 FOR SHARE", unit_id)
    if row is not None:
        await _changed(con, row, (await phones(con, [unit_id], offline_s))[unit_id])


async def _changed(con: asyncpg.Connection, unit: asyncpg.Record, phone: dict[str, Any]) -> None:
    """Tell the operators that the phone of ``unit`` (its row, read ``FOR SHARE``) is now ``phone``."""
    await events.append(
        con, "unit.phone", {"unit_id": unit["id"], "callsign": unit["callsign"], "phone": phone, "unit": unit_snapshot(unit) | {"phone": phone}},
        [OPERATORS],
    )


# Opening a phone socket in one statement, after the unit's lock: whether the phone was connected before (read as
# every presence is), the unit's rows that no longer count dropped (only the newest is needed for its last-seen time
# once a new socket opens), the new socket's row, and the unit's row if the phone was not connected (to announce it).
_OPEN = f"""WITH before AS (SELECT coalesce((SELECT connected FROM ({presence_sql("ARRAY[$2::text]", "$3")}) AS p), false) AS connected),
    dropped AS (DELETE FROM phone_sockets WHERE unit_id = $2 AND NOT ({_LIVE_WITHIN.format(offline_s="$3")})),
    opened AS (INSERT INTO phone_sockets (id, unit_id) VALUES ($1, $2) RETURNING seen_at),
    unit AS (SELECT {UNIT_COLUMNS} FROM units, before WHERE units.id = $2 AND NOT before.connected FOR SHARE OF units)
    SELECT opened.seen_at AS opened_at, unit.* FROM opened LEFT JOIN unit ON true"""


class Refreshes:
    """This process's phone sockets heard from since the last write, refreshed together by `write`."""

    def __init__(self, pool: asyncpg.Pool, offline_s: float) -> None:
        self._pool = pool
        self._offline_s = offline_s
        self._due: dict[uuid.UUID, PhoneSocket] = {}

    def due(self, socket: PhoneSocket) -> None:
        self._due[socket.id] = socket

    def drop(self, socket: PhoneSocket) -> None:
        self._due.pop(socket.id, None)

    async def write(self) -> None:
        """One statement for every socket heard from; one that had expired meanwhile rejoins on its own."""
        if not self._due:
            return
        due, self._due = self._due, {}
        rows = await self._pool.fetch(
            f"UPDATE phone_sockets SET seen_at = now() WHERE id = ANY($1::uuid[]) AND {LIVE} RETURNING id", list(due), self._offline_s,
        )
        refreshed = {r["id"] for r in rows}
        for socket in due.values():
            if socket.id not in refreshed and not socket.closed:
                await socket.rejoin()


class PhoneSocket:
    """One phone socket's presence: opened, heard from, closed."""

    __slots__ = ("id", "unit_id", "closed", "_pool", "_refreshes", "_offline_s", "_refreshed")  # one per phone socket

    def __init__(self, pool: asyncpg.Pool, refreshes: Refreshes, unit_id: str, settings: DispatchSettings) -> None:
        self.id = uuid.uuid4()
        self.unit_id = unit_id
        self.closed = False
        self._pool = pool
        self._refreshes = refreshes
        self._offline_s = settings.phone_offline_s
        self._refreshed = asyncio.get_running_loop().time()

    async def open(self) -> None:
        async with self._pool.acquire() as con, con.transaction():
            await _lock(con, self.unit_id)
            opened = await con.fetchrow(_OPEN, self.id, self.unit_id, self._offline_s)
            if opened["id"] is not None:  # it was not connected
                await _changed(con, opened, {"connected": True, "last_seen": opened["opened_at"].isoformat()})
        self._refreshed = asyncio.get_running_loop().time()

    def heard(self) -> None:
        """The phone sent something: it is there. Written with the others at most every third of the expiry; a
        database out meanwhile costs the phone nothing but its presence (its pings and fixes go on)."""
        now = asyncio.get_running_loop().time()
        if now - self._refreshed < self._offline_s / 3:
            return
        self._refreshed = now
        self._refreshes.due(self)

    async def rejoin(self) -> None:
        """It had expired (a long silence on a link that came back): connected again."""
        try:
            await self._rejoin()
        except Exception as exc:
            if not (database_unreachable(exc) or isinstance(exc, asyncpg.PostgresError)):
                raise
            log.warning("phone socket of unit %s: presence not refreshed (%s)", self.unit_id, type(exc).__name__)

    async def _rejoin(self) -> None:
        async with self._pool.acquire() as con, con.transaction():
            await _lock(con, self.unit_id)
            before = await _connected(con, self.unit_id, self._offline_s)
            await con.execute(
                """INSERT INTO phone_sockets (id, unit_id) VALUES ($1, $2)
                   ON CONFLICT (id) DO UPDATE SET seen_at = now(), closed_at = NULL""",
                self.id, self.unit_id,
            )
            if not before:
                await _announce(con, self.unit_id, self._offline_s)

    async def close(self) -> None:
        """The socket closed; a database that is out meanwhile only delays the change to the expiry."""
        self.closed = True
        self._refreshes.drop(self)
        try:
            async with self._pool.acquire() as con, con.transaction():
                await _lock(con, self.unit_id)
                closed = await con.fetchval(
                    "UPDATE phone_sockets SET closed_at = now() WHERE id = $1 AND closed_at IS NULL RETURNING true", self.id
                )
                if closed and not await _connected(con, self.unit_id, self._offline_s):
                    await _announce(con, self.unit_id, self._offline_s)
        except Exception as exc:
            if not (database_unreachable(exc) or isinstance(exc, asyncpg.PostgresError)):
                raise
            log.warning("phone socket of unit %s: closing not recorded (%s); it expires", self.unit_id, type(exc).__name__)


async def sweep(pool: asyncpg.Pool, offline_s: float) -> int:
    """Close the sockets not heard from within the expiry and announce the phones that went with them."""
    async with pool.acquire() as con, con.transaction():
        stale = await con.fetch(
            "SELECT DISTINCT unit_id FROM phone_sockets WHERE closed_at IS NULL AND seen_at <= now() - make_interval(secs => $1)",
            offline_s,
        )
        units = sorted(r["unit_id"] for r in stale)
        for unit_id in units:
            await _lock(con, unit_id)
        closed = await con.fetch(
            """UPDATE phone_sockets SET closed_at = now()
               WHERE unit_id = ANY($1) AND closed_at IS NULL AND seen_at <= now() - make_interval(secs => $2) RETURNING unit_id""",
            units, offline_s,
        )
        gone = sorted({r["unit_id"] for r in closed})
        for unit_id in gone:
            if not await _connected(con, unit_id, offline_s):
                await _announce(con, unit_id, offline_s)
    return len(closed)


async def sweeper(app: web.Application) -> AsyncIterator[None]:
    """Every process sweeps; the row locks let exactly one close (and announce) each expired socket."""
    offline_s = app[CONFIG].dispatch.phone_offline_s

    async def step() -> None:
        await sweep(app[POOL], offline_s)

    outage = outages.OutageLog(log, "phone presence sweep", app[METRICS])
    task = asyncio.create_task(outages.every(offline_s / 3, step, outage), name="phone-presence")
    refreshes = app[PHONE_REFRESHES] = Refreshes(app[POOL], offline_s)
    writes = asyncio.create_task(outages.every(REFRESH_S, refreshes.write, outages.OutageLog(log, "phone presence refresh", app[METRICS])),
                                 name="phone-presence-refresh")
    yield
    await cancel_and_wait(writes)
    await cancel_and_wait(task)
