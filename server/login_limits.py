"""Login limits: reserve an attempt atomically in PostgreSQL before its password is checked.

Three counters per fixed window of ``auth.login_window_s`` (see the README, "Login limits"):

- per account and address: ``login_max_failures`` checks, then 429 with Retry-After;
- per address across accounts: ``login_address_max_failures`` checks, then 429;
- per account: never a refusal, but once it has ``login_max_failures`` failures every
  further check waits ``login_delay_base_s`` doubling per failure up to ``login_delay_max_s``,
  and the administrators get one alert per window.

Each counter is taken with an upsert that returns the new count, in the order pair,
address, account, in one transaction: the row locks make concurrent attempts (in any
process) count one after another, and a refused attempt rolls back so it uses up
nothing. A check in flight counts as a failure until it succeeds; a success clears
the pair and gives back its reservation on the other two.
"""

from __future__ import annotations

import dataclasses
import logging
import math

import asyncpg

from server import events
from server.config import AuthSettings

log = logging.getLogger(__name__)

ADMINS = "role:admin"


@dataclasses.dataclass(frozen=True, slots=True)
class Attempt:
    """A reserved check: who, and how it must be run."""

    username: str
    address: str
    delay_s: float  # wait this long before checking (per-account slowdown)
    rank: int  # orders the hashing queue: -1 for the account's known address, else earlier attempts from this address


@dataclasses.dataclass(frozen=True, slots=True)
class Refused:
    limit: str  # "account_address" or "address"
    retry_after_s: int


class _Over(Exception):
    def __init__(self, refused: Refused) -> None:
        self.refused = refused


_COUNT = """
INSERT INTO login_counters AS c (scope, key, window_start, attempts) VALUES ($1, $2, now(), 1)
ON CONFLICT (scope, key) DO UPDATE SET
    window_start = CASE WHEN c.window_start <= now() - make_interval(secs => $3) THEN now() ELSE c.window_start END,
    attempts = CASE WHEN c.window_start <= now() - make_interval(secs => $3) THEN 1 ELSE c.attempts + 1 END,
    alerted = c.alerted AND c.window_start > now() - make_interval(secs => $3)
RETURNING attempts, alerted, extract(epoch FROM window_start + make_interval(secs => $3) - now())::float8 AS left_s
"""


# The account signed in from this address lately (an operator's console, a puskesmas PC): its check
# goes ahead of every other in the hashing queue, so a distributed flood cannot crowd it out.
_USUAL_ADDRESS = """
SELECT EXISTS (SELECT 1 FROM sessions s JOIN users u ON u.id = s.user_id
               WHERE u.username = $1 AND s.address = $2 AND s.created_at > now() - interval '30 days')
"""


def _pair(username: str, address: str) -> str:
    return f"{username} {address}"


def _seconds(left_s: float) -> int:
    return max(1, math.ceil(left_s))


def account_delay(failures: int, settings: AuthSettings) -> float:
    """Seconds to wait before checking a password for an account with this many failures in the window."""
    over = failures - settings.login_max_failures
    if over < 0:
        return 0.0
    return min(settings.login_delay_base_s * 2.0 ** min(over, 32), settings.login_delay_max_s)


async def reserve(
    pool: asyncpg.Pool, settings: AuthSettings, username: str, address: str | None, *, known: bool
) -> Attempt | Refused:
    """Count one attempt on every counter, or none if a hard limit is reached; alert once per window."""
    where = address or "unknown"
    window = settings.login_window_s
    try:
        async with pool.acquire() as con, con.transaction():
            pair = await con.fetchrow(_COUNT, "pair", _pair(username, where), window)
            if pair["attempts"] > settings.login_max_failures:
                raise _Over(Refused("account_address", _seconds(pair["left_s"])))
            by_address = await con.fetchrow(_COUNT, "address", where, window)
            if by_address["attempts"] > settings.login_address_max_failures:
                raise _Over(Refused("address", _seconds(by_address["left_s"])))
            account = await con.fetchrow(_COUNT, "account", username, window)
            if known and account["attempts"] >= settings.login_max_failures and not account["alerted"]:
                await _alert(con, username, account["attempts"], window)
            usual = await con.fetchval(_USUAL_ADDRESS, username, where)
    except _Over as over:
        return over.refused
    rank = -1 if usual else by_address["attempts"] - 1
    return Attempt(username, where, account_delay(account["attempts"] - 1, settings), rank)


async def _alert(con: asyncpg.Connection, username: str, attempts: int, window_s: int) -> None:
    await con.execute("UPDATE login_counters SET alerted = true WHERE scope = 'account' AND key = $1", username)
    await events.append(con, "alert", {"alert": "login_failures", "username": username, "failures": attempts, "window_s": window_s}, [ADMINS])
    log.warning("failed logins on one account reached %s in %s s: slowing its checks, alerting admins", attempts, window_s)


async def succeeded(con: asyncpg.Connection, attempt: Attempt) -> None:
    """The right password: clear the pair and give back the other reservations (in lock order)."""
    await con.execute("DELETE FROM login_counters WHERE scope = 'pair' AND key = $1", _pair(attempt.username, attempt.address))
    await _give_back(con, attempt, ("address", "account"))


async def unchecked(pool: asyncpg.Pool, attempt: Attempt) -> None:
    """The password was never checked (the hashing queue was full): the attempt uses up nothing."""
    async with pool.acquire() as con, con.transaction():
        await _give_back(con, attempt, ("pair", "address", "account"))


async def _give_back(con: asyncpg.Connection, attempt: Attempt, scopes: tuple[str, ...]) -> None:
    keys = {"pair": _pair(attempt.username, attempt.address), "address": attempt.address, "account": attempt.username}
    for scope in scopes:  # one row at a time, in the order reserve() locks them, so no two can deadlock
        await con.execute(
            "UPDATE login_counters SET attempts = greatest(attempts - 1, 0) WHERE scope = $1 AND key = $2", scope, keys[scope]
        )


async def forget_expired(pool: asyncpg.Pool, window_s: int) -> None:
    """Drop counters whose window is over, skipping any row a login holds right now."""
    await pool.execute(
        """DELETE FROM login_counters WHERE (scope, key) IN (
               SELECT scope, key FROM login_counters WHERE window_start <= now() - make_interval(secs => $1)
               FOR UPDATE SKIP LOCKED)""",
        window_s,
    )
