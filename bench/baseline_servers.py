"""The baselines psc119's dispatch path and sockets are measured against: the least an aiohttp server can do.

``forward``: ``GET /ws/unit?unit=U`` opens unit U's socket (greeted with a hello); ``POST /dispatch`` with ``{"unit": U, ...}`` sends
the body to U's socket as a ``unit.dispatched`` event and answers 201. Idle sockets on it are the memory baseline.

``notify``: the same, through PostgreSQL as psc119 goes: the POST inserts the body into a table and NOTIFYs its
id in one transaction; a listening connection reads the row back and forwards it.

Both also relay signaling: ``GET /ws/relay?id=P`` opens peer P's socket, and every frame on it is sent on, as
received, to the socket of the peer its ``dst`` names: the least a signaling server does (PeerJS's does the same,
adding the sender). The relay benchmark's floor for an aiohttp server. ``notify`` also stores: a ``CHAT`` frame is
committed before it is sent on, the least a server does that never relays a message it has not stored (as
psc119's stored chat): every frame waiting when a batch starts goes into one insert, its own transaction, and up
to two batches are under way at once (the next inserts while the one before commits), each sent on in order.

Both also take GPS fixes on the unit sockets (``{"type": "position", ...}``, latest per unit kept in memory) and
send them to every ``GET /ws/operator`` socket as one ``positions`` message every 0.25 s, as psc119's console gets
them: the least a server can do with the fixes of `bench/bench_gps.py`.

Run as its own process; prints ``serving on URL`` once it listens on 127.0.0.1.

    python bench/baseline_servers.py forward|notify [--dsn DSN]
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

import asyncpg
from aiohttp import web

SOCKETS = web.AppKey("sockets", dict)
POOL = web.AppKey("pool", asyncpg.Pool)
FIXES = web.AppKey("fixes", dict)
POSITIONS_EVERY_S = 0.25


async def unit_socket(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(heartbeat=20.0)
    await ws.prepare(request)
    unit = request.query["unit"]
    request.app[SOCKETS][unit] = ws
    await ws.send_str(json.dumps({"type": "hello", "unit": unit}))  # as psc119 greets a socket (and compresses it)
    try:
        async for msg in ws:
            fix = json.loads(msg.data)
            if fix.get("type") == "position":
                request.app[FIXES][unit] = {"id": unit, "lat": fix["lat"], "lon": fix["lon"], "at": fix.get("at")}
    finally:
        if request.app[SOCKETS].get(unit) is ws:
            del request.app[SOCKETS][unit]
    return ws


async def operator_socket(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(heartbeat=20.0, compress=True)
    await ws.prepare(request)
    fixes = request.app[FIXES]

    async def batches() -> None:
        while True:
            await asyncio.sleep(POSITIONS_EVERY_S)
            if fixes:
                batch = list(fixes.values())
                fixes.clear()
                await ws.send_str(json.dumps({"type": "positions", "units": batch}))

    sender = asyncio.create_task(batches())
    try:
        async for _ in ws:
            pass
    finally:
        sender.cancel()
    return ws


async def relay_socket(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(heartbeat=20.0)
    await ws.prepare(request)
    peer = request.query["id"]
    peers = request.app[SOCKETS]
    peers[peer] = ws
    store = request.app.get(STORE)
    try:
        async for msg in ws:
            frame = json.loads(msg.data)
            if store is not None and frame["type"] == "CHAT":
                store.submit(frame["dst"], msg.data)
                continue
            target = peers.get(frame["dst"])
            if target is not None:
                await target.send_str(msg.data)
    finally:
        if peers.get(peer) is ws:
            del peers[peer]
    return ws


class StoredRelay:
    """Commits each submitted frame (with every other waiting when a batch starts), then sends it on."""

    def __init__(self, pool: asyncpg.Pool, peers: dict[str, web.WebSocketResponse]) -> None:
        self._pool = pool
        self._peers = peers
        self._waiting: list[tuple[str, str]] = []
        self._wake = asyncio.Event()

    def submit(self, dst: str, data: str) -> None:
        self._waiting.append((dst, data))
        self._wake.set()

    async def run(self) -> None:
        previous: asyncio.Task[None] | None = None
        under_way: set[asyncio.Task[None]] = set()
        while True:
            while not self._waiting:
                self._wake.clear()
                await self._wake.wait()
            batch, self._waiting = self._waiting[:256], self._waiting[256:]
            previous = asyncio.create_task(self._store(batch, previous))
            under_way.add(previous)
            previous.add_done_callback(under_way.discard)
            while len(under_way) >= 2:
                await asyncio.wait(under_way, return_when=asyncio.FIRST_COMPLETED)

    async def _store(self, batch: list[tuple[str, str]], before: asyncio.Task[None] | None) -> None:
        await self._pool.execute("INSERT INTO bench_chat (dst, body) SELECT * FROM unnest($1::text[], $2::text[])",
                                 [dst for dst, _ in batch], [data for _, data in batch])
        if before is not None:
            await before  # sent on in the order they came
        for dst, data in batch:
            target = self._peers.get(dst)
            if target is not None:
                await target.send_str(data)


STORE = web.AppKey("store", StoredRelay)


async def forward(app: web.Application, body: dict[str, Any]) -> None:
    ws = app[SOCKETS].get(body["unit"])
    if ws is not None:
        await ws.send_str(json.dumps({"type": "event", "event": "unit.dispatched", "data": body}))


async def dispatch_forward(request: web.Request) -> web.Response:
    await forward(request.app, await request.json())
    return web.json_response({"ok": True}, status=201)


async def dispatch_notify(request: web.Request) -> web.Response:
    body = await request.json()
    async with request.app[POOL].acquire() as con, con.transaction():
        row_id = await con.fetchval("INSERT INTO bench_dispatch (body) VALUES ($1) RETURNING id", json.dumps(body))
        await con.execute("SELECT pg_notify('bench_dispatch', $1)", str(row_id))
    return web.json_response({"id": row_id}, status=201)


async def notify_context(app: web.Application, dsn: str) -> Any:
    pool = await asyncpg.create_pool(dsn, min_size=2, max_size=10)
    await pool.execute("CREATE TABLE IF NOT EXISTS bench_dispatch (id bigserial PRIMARY KEY, body text NOT NULL)")
    await pool.execute("CREATE TABLE IF NOT EXISTS bench_chat (id bigserial PRIMARY KEY, dst text NOT NULL, body text NOT NULL)")
    app[POOL] = pool
    app[STORE] = StoredRelay(pool, app[SOCKETS])
    storing = asyncio.create_task(app[STORE].run())
    listener = await asyncpg.connect(dsn)
    tasks: set[asyncio.Task[None]] = set()

    async def deliver(row_id: int) -> None:
        body = await pool.fetchval("SELECT body FROM bench_dispatch WHERE id = $1", row_id)
        await forward(app, json.loads(body))

    def on_notify(_con: Any, _pid: int, _channel: str, payload: str) -> None:
        task = asyncio.get_running_loop().create_task(deliver(int(payload)))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    await listener.add_listener("bench_dispatch", on_notify)
    yield
    storing.cancel()
    await listener.close()
    await pool.close()


def make_app(mode: str, dsn: str | None) -> web.Application:
    app = web.Application()
    app[SOCKETS] = {}
    app[FIXES] = {}
    app.router.add_get("/ws/unit", unit_socket)
    app.router.add_get("/ws/operator", operator_socket)
    app.router.add_get("/ws/relay", relay_socket)
    if mode == "forward":
        app.router.add_post("/dispatch", dispatch_forward)
    else:
        assert dsn is not None, "notify needs --dsn"
        app.router.add_post("/dispatch", dispatch_notify)
        app.cleanup_ctx.append(lambda a: notify_context(a, dsn))
    return app


async def main(mode: str, dsn: str | None) -> None:
    runner = web.AppRunner(make_app(mode, dsn), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
    await site.start()
    port = runner.addresses[0][1]
    print(f"serving on http://127.0.0.1:{port}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=("forward", "notify"))
    parser.add_argument("--dsn")
    args = parser.parse_args()
    asyncio.run(main(args.mode, args.dsn))
