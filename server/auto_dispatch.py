"""Automatic dispatch of a merah call (``dispatch.auto_dispatch_merah``): its fastest first responder and,
when the call needs transport that one cannot give, its fastest carrier, without waiting for the operator.
Every new merah incident goes through here, whether an operator took the call or a referral made it."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from dispatch.doctrine import needs_from_capabilities
from dispatch.errors import Refused
from dispatch.triage import TriageTable
from server import assignments
from server.errors import Conflict, NotFound
from server.keys import CONFIG, FLEET, METRICS, POOL

Sent = tuple[dict[str, Any] | None, dict[str, Any] | None]


async def merah(app: web.Application, row: Any, tiers: dict[str, list[dict[str, Any]]], triage: TriageTable) -> Sent | None:
    """The first responder's and the carrier's assignments (None: none could be sent); None when not applicable."""
    if not (app[CONFIG].dispatch.auto_dispatch_merah and row["priority"] == "merah"):
        return None
    first, capabilities = await _send_first(app, str(row["id"]), tiers["recommendations"], triage, exclude=set())
    needs = needs_from_capabilities(row["needs"])
    if not needs.transport or needs.carrier(capabilities):
        return first, None
    carrier, _ = await _send_first(app, str(row["id"]), tiers["transport"], triage, exclude={first["unit_id"]} if first else set())
    return first, carrier


async def _send_first(
    app: web.Application, incident_id: str, candidates: list[dict[str, Any]], triage: TriageTable, exclude: set[str]
) -> tuple[dict[str, Any] | None, frozenset[str]]:
    """Dispatch the first candidate still available: its assignment and capabilities (None and none if no one)."""
    for candidate in candidates:
        if candidate["unit_id"] in exclude:
            continue
        try:
            assignment, _ = await assignments.dispatch(
                app[POOL], app[FLEET], app[CONFIG].dispatch, triage, assignments.SYSTEM,
                incident_id, candidate["unit_id"], app[METRICS], auto=True,
            )
        except (Conflict, NotFound, Refused):
            continue
        return assignment, frozenset(candidate["capabilities"])
    return None, frozenset()
