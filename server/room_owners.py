"""Which server process holds each consult's video room, so that several processes behave as one.

Every process is a *node* that beats in PostgreSQL (``nodes``). A room is held by one
live node (``room_owners``): the first process a member reaches claims it and builds
it; any other process relays that member's websocket to the owner
(`server.room_relay`). A node silent for ``server.node_ttl_s`` is dead, and the next
process a member reaches claims its rooms; the row lock of ``INSERT ... ON
CONFLICT`` lets exactly one claimant win. A node that learns on its beat that a room
was claimed away (it was too slow to beat) closes its copy, so the members reconnect
to the new owner. A node that stops cleanly deletes itself, and with it its claims,
so its rooms move at once. A process restarted at the address of a killed one takes
that one's claims at once, without waiting ``node_ttl_s``: only one process listens
on an address, so a claim under this process's own URL made by another node is a
dead predecessor's (``server.advertise_url`` must name one process).

Times are the database's ``now()``, so the processes' clocks do not matter.
"""

from __future__ import annotations

import logging
import uuid

import asyncpg
from aiohttp import web

from server.config import ServerSettings

log = logging.getLogger(__name__)

# Nodes silent this long are deleted on a beat (their claims go with them).
FORGET_DEAD_AFTER_S = 86400.0


def local_url(request: web.Request) -> str | None:
    """``http(s)://host:port`` of the local address ``request`` came in on (None without a socket)."""
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    if not sockname:
        return None
    host, port = sockname[0], sockname[1]
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1" if host == "0.0.0.0" else "::1"
    shown = f"[{host}]" if ":" in host else host
    return f"{'https' if request.secure else 'http'}://{shown}:{port}"


class Nodes:
    """This process as a node: its beat, and its claims on rooms."""

    def __init__(self, pool: asyncpg.Pool, settings: ServerSettings) -> None:
        self.id = uuid.uuid4()
        self._pool = pool
        self.ttl_s = settings.node_ttl_s
        self._advertise_url = settings.advertise_url.rstrip("/")

    @property
    def beat_every_s(self) -> float:
        return self.ttl_s / 4

    def url_for(self, request: web.Request) -> str:
        """How the other processes reach this one: ``server.advertise_url``, else the address the request came in on."""
        url = self._advertise_url or local_url(request)
        if url is None:
            raise RuntimeError("no local address to advertise; set server.advertise_url")
        return url

    async def beat(self) -> set[str]:
        """Say this node is alive; the consults whose rooms it still holds."""
        async with self._pool.acquire() as con:
            await con.execute(
                "INSERT INTO nodes (id) VALUES ($1) ON CONFLICT (id) DO UPDATE SET seen_at = now()", self.id
            )
            await con.execute(
                "DELETE FROM nodes WHERE seen_at < now() - make_interval(secs => $1)", FORGET_DEAD_AFTER_S
            )
            rows = await con.fetch("SELECT consult_id FROM room_owners WHERE node = $1", self.id)
        return {str(r["consult_id"]) for r in rows}

    async def claim(
        self, consult_id: str, url: str, read: str, *args: object, only_if: str = "true"
    ) -> tuple[str | None, asyncpg.Record]:
        """Hold the room of ``consult_id`` unless a live node does: (None, the row of ``read``) when it is ours, else
        (the owner's URL, the row). ``read`` selects one row about the consult (``$1``, then ``args`` from ``$5``) in
        the claim's own statement, so that a room is claimed and read in one round trip. Without ``only_if`` (a
        condition on the same parameters) no claim is taken: (None, the row), its ``won`` false."""
        key = uuid.UUID(consult_id)
        async with self._pool.acquire() as con:
            # A second round only when the owner let go, or claimed it after this statement's snapshot.
            for _ in range(3):
                # A claim made at this process's own address is a dead predecessor's: one process listens on an address.
                row = await con.fetchrow(
                    f"""WITH claim AS (
                            INSERT INTO room_owners AS o (consult_id, node, url) SELECT $1::uuid, $2::uuid, $3::text WHERE {only_if}
                            ON CONFLICT (consult_id) DO UPDATE SET node = EXCLUDED.node, url = EXCLUDED.url, since = now()
                            WHERE o.node = EXCLUDED.node OR o.url = EXCLUDED.url OR NOT EXISTS (
                                SELECT 1 FROM nodes n WHERE n.id = o.node AND n.seen_at > now() - make_interval(secs => $4))
                            RETURNING node)
                        SELECT EXISTS (SELECT FROM claim) AS won, (SELECT url FROM room_owners WHERE consult_id = $1) AS owner,
                               {only_if} AS permitted, wanted.*
                        FROM (SELECT) AS one LEFT JOIN ({read}) AS wanted ON true""",
                    key, self.id, url, self.ttl_s, *args,
                )
                assert row is not None  # one row whatever was read
                if row["won"]:
                    return None, row
                if row["owner"] is not None:
                    return str(row["owner"]), row
                if not row["permitted"]:
                    return None, row
        raise ConnectionError(f"the owner of room {consult_id} keeps changing")

    async def release(self, consult_id: str) -> None:
        await self._pool.execute(
            "DELETE FROM room_owners WHERE consult_id = $1 AND node = $2", uuid.UUID(consult_id), self.id
        )

    async def leave(self) -> None:
        """This process stops: forget the node and, with it, every claim."""
        await self._pool.execute("DELETE FROM nodes WHERE id = $1", self.id)
