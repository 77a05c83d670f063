"""An idle room socket holds no writer task: its messages are written by a task that runs only while some wait; nor
what only its join needed (the join's outcome with its welcome, the join message, the grant); and it waits for its
next frame in one coroutine of the room socket's, not one inside another (each a frame an idle socket keeps)."""

from __future__ import annotations

import asyncio
import gc
import json
import uuid
from pathlib import Path

import websockets

from signaling.messages import Join
from signaling.room import JoinResult
from tests.server.test_consult_room import CANDIDATE, recv
from tests.server.test_consults import close_api
from tests.server.test_live_socket import coroutines_in
from tests.server.test_socket_flood import room, room_api_with


def writers() -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("room-writer-")]


async def test_joined_sockets_hold_no_writer_task_once_their_messages_are_written(demo_dsn: str, tmp_path: Path) -> None:
    api = await room_api_with(demo_dsn, tmp_path)
    try:
        await _exchange(*(await room(api))[1:])
    finally:
        await close_api(api)


async def test_joined_sockets_keep_nothing_of_their_join_and_one_coroutine_each(demo_dsn: str, tmp_path: Path) -> None:
    api = await room_api_with(demo_dsn, tmp_path)
    try:
        _, pk_ws, sp_ws = await room(api)
        await pk_ws.send(json.dumps({"type": "ping"}))
        await recv(pk_ws, "pong")
        gc.collect()
        assert [type(o).__name__ for o in gc.get_objects() if type(o) in (JoinResult, Join)] == []
        assert coroutines_in("server/room_socket.py") == ["_serve_upgraded"] * 2  # both members, each waiting in its socket's life alone
        # ...for aiohttp's read itself, not through `async for`'s coroutine of its own.
        assert coroutines_in("aiohttp/web_ws.py") == ["receive"] * 2
        await _exchange(pk_ws, sp_ws)  # and the members talk on
    finally:
        await close_api(api)


async def _exchange(pk_ws: websockets.ClientConnection, sp_ws: websockets.ClientConnection) -> None:
    await pk_ws.send(json.dumps({"type": "candidate", "candidate": CANDIDATE, "sdpMid": "0", "sdpMLineIndex": 0}))
    assert (await recv(sp_ws, "candidate"))["candidate"] == CANDIDATE
    for _ in range(50):  # the writer ends right after its last write
        if not writers():
            break
        await asyncio.sleep(0.01)
    assert writers() == []
    # Writing starts again when there is something to write, in order.
    for n in range(3):
        await sp_ws.send(json.dumps({"type": "chat", "id": uuid.uuid4().hex, "text": f"pesan {n}"}))
    assert [(await recv(pk_ws, "chat"))["text"] for _ in range(3)] == ["pesan 0", "pesan 1", "pesan 2"]
    await pk_ws.close()
    await sp_ws.close()
