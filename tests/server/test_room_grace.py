"""The room socket's side of a signaling blip: a member whose socket dropped is ``reconnecting`` for the others,
``left`` only after ``consult.rejoin_grace_s`` (never if it is back in time); one that said goodbye is ``left`` at
once; a browser's app-level ``ping`` gets a ``pong``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import Api, start_api
from tests.server.test_consult_room import join, recv, token_for
from tests.server.test_consults import accepted_consult, close_api, consult_config


@pytest.fixture
async def gapi(demo_dsn: str, tmp_path: Path) -> AsyncIterator[Api]:
    client = await start_api(demo_dsn, consult_config(demo_dsn, tmp_path, rejoin_grace_s=1.0))
    yield client
    await close_api(client)


async def test_a_dropped_member_is_reconnecting_then_left_after_the_grace(gapi: Api) -> None:
    consult_id, pk, sp = await accepted_consult(gapi)
    ani, _ = await join(gapi, consult_id, await token_for(gapi, consult_id, pk))
    budi, _ = await join(gapi, consult_id, await token_for(gapi, consult_id, sp))
    await recv(ani, "presence")
    ani.transport.abort()  # the network goes: no close frame
    first = await recv(budi, "presence")
    assert first["state"] == "reconnecting", first
    loop = asyncio.get_running_loop()
    start = loop.time()
    second = await recv(budi, "presence")
    assert (second["state"], second["generation"]) == ("left", first["generation"])
    assert loop.time() - start > 0.5
    await budi.close()


async def test_a_member_back_within_the_grace_never_left(gapi: Api) -> None:
    consult_id, pk, sp = await accepted_consult(gapi)
    token = await token_for(gapi, consult_id, pk)
    ani, _ = await join(gapi, consult_id, token)
    budi, seen_by_budi = await join(gapi, consult_id, await token_for(gapi, consult_id, sp))
    ani.transport.abort()
    assert (await recv(budi, "presence"))["state"] == "reconnecting"
    ani, _ = await join(gapi, consult_id, token, keep=[seen_by_budi["user"]])  # its call with Budi still works
    back = await recv(budi, "presence")
    assert (back["state"], back["resumed"]) == ("joined", True)
    with pytest.raises(TimeoutError):  # no "left" when the grace ends
        await asyncio.wait_for(recv(budi, "presence"), 2)
    for ws in (ani, budi):
        await ws.close()


async def test_a_goodbye_is_left_at_once_and_a_ping_gets_a_pong(gapi: Api) -> None:
    consult_id, pk, sp = await accepted_consult(gapi)
    ani, _ = await join(gapi, consult_id, await token_for(gapi, consult_id, pk))
    budi, _ = await join(gapi, consult_id, await token_for(gapi, consult_id, sp))
    await budi.send(json.dumps({"type": "ping"}))
    assert await recv(budi, "pong") == {"type": "pong"}
    await ani.close()  # 1000: hung up
    assert (await recv(budi, "presence"))["state"] == "left"
    await budi.close()
