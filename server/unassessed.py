"""Assessing, at start-up, the calls that were stored but never assessed.

A call is stored with its assessment (`server.call_intake`), or without one when its assessment
failed (`server.incidents.record_call`, also how a referral's transfer is stored before it is
assessed); such a call has ``assessed_at`` unset, no duplicate or prank warning and no
``call.assessed`` event. Every process assesses such calls when it starts, oldest
first, exactly as the request would have: the warnings are stored and announced to
the operators. Two processes starting together may both assess a call; only the
first assessment is stored and announced (`server.incidents.assess`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from server import incidents
from server.keys import CONFIG, FLEET, POOL

log = logging.getLogger(__name__)


async def assess_left_over(app: web.Application) -> AsyncIterator[None]:
    """The cleanup_ctx of the start-up pass (after the fleet index: assessing recommends units)."""
    pool = app[POOL]
    rows = await pool.fetch(
        f"SELECT {incidents.INCIDENT_COLUMNS} FROM incidents WHERE assessed_at IS NULL ORDER BY received_at"
    )
    if rows:
        for row in rows:
            await incidents.assess(pool, app[FLEET], app[CONFIG].dispatch, row)
        log.warning("assessed %d call(s) recorded but not assessed before the last stop", len(rows))
    yield
