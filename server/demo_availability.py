"""The demo hospitals' first availability figures, loaded with the demo region and marked as set by the demo."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import asyncpg

from dispatch.availability import parse_beds, parse_service_states
from server.hospital_availability import DEMO_SETTER, write


def figures() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(resources.files("server.demo").joinpath("availability.json").read_text(encoding="utf-8"))
    return data


async def load(con: asyncpg.Connection, services: dict[str, list[str]]) -> None:
    """Each hospital's beds, and every one of its services running but those listed as down; checked like an update."""
    for code, entry in figures()["hospitals"].items():
        offered = frozenset(services[code])
        running = parse_service_states({s: s not in entry["down"] for s in offered | set(entry["down"])}, offered, f"{code}.down")
        await write(con, code, parse_beds(entry["beds"], f"{code}.beds"), running, DEMO_SETTER)
