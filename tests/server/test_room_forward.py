"""The room forwards a relayed frame as its sender wrote it, with the envelope the room sets; the sender cannot
choose the ``from`` its recipient reads, stored chat included."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import websockets

from tests.server.test_consult_room import CANDIDATE, me
from tests.server.test_consults import close_api
from tests.server.test_socket_flood import room, room_api_with


async def text_of(ws: websockets.ClientConnection, type: str) -> str:
    """The next frame of ``type``, as its text."""
    while True:
        text = await asyncio.wait_for(ws.recv(), 5)
        assert isinstance(text, str)
        if json.loads(text)["type"] == type:
            return text


async def test_a_relayed_frame_is_the_senders_text_with_the_rooms_envelope(demo_dsn: str, tmp_path: Path) -> None:
    api = await room_api_with(demo_dsn, tmp_path)
    try:
        consult_id, pk_ws, sp_ws = await room(api)
        pk_id = await me(api, await api.login("puskesmas"))
        sp_id = await me(api, await api.login("specialist"))
        envelope = f',"to":"{sp_id}","from":"{pk_id}","consult":"{consult_id}"}}'

        frame = f'{{"type": "candidate", "sdpMid": "0", "candidate": "{CANDIDATE}", "sdpMLineIndex": 0}}'
        await pk_ws.send(frame)
        assert await text_of(sp_ws, "candidate") == frame[:-1] + envelope
        await pk_ws.send('{"type": "chat", "id": "m1", "text": "EKG terlampir"}')
        assert await text_of(sp_ws, "chat") == '{"type": "chat", "id": "m1", "text": "EKG terlampir"' + envelope

        # A "from" of the sender's own is replaced by the room's, relayed or stored.
        for forged in ({"type": "candidate", "candidate": CANDIDATE, "sdpMid": "0", "from": sp_id},
                       {"type": "chat", "id": uuid.uuid4().hex, "text": "saya spesialis", "from": sp_id}):
            await pk_ws.send(json.dumps(forged))
            text = await text_of(sp_ws, str(forged["type"]))
            assert text.count('"from"') == 1 and json.loads(text)["from"] == pk_id
        await pk_ws.close()
        await sp_ws.close()
    finally:
        await close_api(api)
