"""Several server processes on one database hold each video room once: the first process a member reaches
claims the room, the others relay their members' sockets to it unchanged (refusals and close codes
included), and a room whose process stops or dies is taken over by the next process a member reaches."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import asyncpg
import pytest
import websockets

from server.keys import ROOMS
from signaling.media import SyntheticSource
from signaling.peer import ConsultPeer
from tests.conftest import Api, start_api
from tests.server.process_support import Remote, Served, cli_env, free_port
from tests.server.test_consult_media import LOOPBACK, open_room
from tests.server.test_consult_room import join, join_text, recv, refused, token_for
from tests.server.test_consults import OUTCOME, accepted_consult, add_users, close_api, consult_config, request_consult
from tests.signaling.room_relay import run_peers, stop_peers

SDP = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"


@pytest.fixture
async def two(demo_dsn: str, tmp_path: Path) -> AsyncIterator[tuple[Api, Api]]:
    """Two apps on one database, each a node of its own (beating every 0.25 s, dead after 1 s)."""
    apis = []
    for name in ("a", "b"):
        config = consult_config(demo_dsn, tmp_path / name)
        config = dataclasses.replace(config, server=dataclasses.replace(config.server, node_ttl_s=1.0))
        apis.append(await start_api(demo_dsn, config))
    yield apis[0], apis[1]
    for api in reversed(apis):
        if not api.server.closed:
            await close_api(api)


def base(api: Api) -> str:
    return f"http://127.0.0.1:{api.server.port}"


async def owner(con: asyncpg.Connection, consult_id: str) -> str | None:
    url: str | None = await con.fetchval("SELECT url FROM room_owners WHERE consult_id = $1", uuid.UUID(consult_id))
    return url


async def closed_with(ws: websockets.ClientConnection) -> int | None:
    """Read until the server closes the socket; its close code."""
    with pytest.raises(websockets.ConnectionClosed):
        while True:
            await asyncio.wait_for(ws.recv(), 5)
    return ws.close_code


async def test_members_on_two_processes_share_one_room(two: tuple[Api, Api], con: asyncpg.Connection) -> None:
    a, b = two
    consult_id, pk, sp = await accepted_consult(a)
    pk_ws, _ = await join(a, consult_id, await token_for(a, consult_id, pk))
    assert await owner(con, consult_id) == base(a)  # the first process reached holds the room
    # The specialist reaches the other process, which relays to the owner: one room, not two.
    sp_ws, welcome = await join(b, consult_id, await token_for(b, consult_id, sp))
    assert welcome["role"] == "specialist" and [p["role"] for p in welcome["peers"]] == ["requester"]
    presence = await recv(pk_ws, "presence")
    assert (presence["state"], presence["role"], presence["user"]) == ("joined", "specialist", welcome["user"])
    assert b.server.app[ROOMS].loaded(consult_id) is None and a.server.app[ROOMS].loaded(consult_id) is not None

    # Negotiation and chat cross in both directions with the sender stamped by the owner.
    sp_id, pk_id = welcome["user"], welcome["peers"][0]["user"]
    await pk_ws.send(json.dumps({"type": "offer", "to": sp_id, "sdp": SDP}))
    offer = await recv(sp_ws, "offer")
    assert (offer["sdp"], offer["from"]) == (SDP, pk_id)
    await sp_ws.send(json.dumps({"type": "chat", "id": uuid.uuid4().hex, "text": "lewat proses lain"}))
    chat = await recv(pk_ws, "chat")
    assert (chat["text"], chat["from"]) == ("lewat proses lain", sp_id)
    await pk_ws.send(json.dumps({"type": "chat", "id": uuid.uuid4().hex, "text": "diterima"}))
    assert (await recv(sp_ws, "chat"))["text"] == "diterima"
    # A bad message through the relay gets the owner's error reply; the room stays up.
    await sp_ws.send(json.dumps({"type": "offer", "to": sp_id, "sdp": "x" * (65 * 1024)}))
    assert (await recv(sp_ws, "error"))["code"] == "invalid_message"

    # Refusals made by the owner reach the member through the relay, message and close code.
    [outsider] = await add_users(a.dsn, "luar", 1)
    outsider_session = await a.login(outsider, "demo119x")
    _, body = await request_consult(a, pk)
    other_id = body["consult"]["id"]
    assert (await a.call("POST", f"/api/consults/{other_id}/accept", outsider_session))[0] == 200
    reply, code = await refused(b, consult_id, join_text(await token_for(a, other_id, outsider_session)))
    assert (reply and reply["code"], code) == ("not_a_member", 4403)

    # A second connection of the same member through the relay replaces the first, as on the owner.
    sp_again, _ = await join(b, consult_id, await token_for(b, consult_id, sp))
    assert await closed_with(sp_ws) == 4000
    # Completing the consult (on the relaying process) closes every socket with 4409, relayed or not.
    assert (await b.call("POST", f"/api/consults/{consult_id}/complete", sp, json={"outcome": OUTCOME}))[0] == 200
    assert await closed_with(pk_ws) == 4409
    assert await closed_with(sp_again) == 4409
    for _ in range(50):
        if await owner(con, consult_id) is None:
            break
        await asyncio.sleep(0.1)
    assert await owner(con, consult_id) is None  # the claim is released with the room


async def test_a_room_moves_when_its_process_stops_or_loses_its_claim(two: tuple[Api, Api], con: asyncpg.Connection) -> None:
    a, b = two
    consult_id, pk, sp = await accepted_consult(a)
    pk_ws, _ = await join(a, consult_id, await token_for(a, consult_id, pk))
    sp_ws, _ = await join(b, consult_id, await token_for(b, consult_id, sp))
    await recv(pk_ws, "presence")

    # A claim taken away (its process was too slow to beat) closes the copy there with 1001.
    await con.execute(
        "UPDATE room_owners SET node = $2, url = $3 WHERE consult_id = $1",
        uuid.UUID(consult_id), b.server.app[ROOMS].nodes.id, base(b),
    )
    assert await closed_with(pk_ws) == 1001
    assert await closed_with(sp_ws) == 1001  # relayed from the owner's close
    # Both rejoin where they were; the room is now built on b, and a relays to it.
    sp_ws, _ = await join(b, consult_id, await token_for(b, consult_id, sp))
    pk_ws, _ = await join(a, consult_id, await token_for(a, consult_id, pk))
    assert (await recv(sp_ws, "presence"))["role"] == "requester"
    assert a.server.app[ROOMS].loaded(consult_id) is None and b.server.app[ROOMS].loaded(consult_id) is not None

    # b stops cleanly: its node and claims go at once, the relayed member is told to try again,
    # and its next join (through a) finds no live owner, so a builds the room without waiting.
    await close_api(b)
    assert await closed_with(pk_ws) == 1001
    assert await con.fetchval("SELECT count(*) FROM nodes WHERE id = $1", b.server.app[ROOMS].nodes.id) == 0
    pk_ws, welcome = await join(a, consult_id, await token_for(a, consult_id, pk))
    assert welcome["peers"] == []
    assert await owner(con, consult_id) == base(a)
    await pk_ws.close()


async def test_a_killed_owner_is_replaced_and_video_flows_again(demo_dsn: str, con: asyncpg.Connection, tmp_path: Path) -> None:
    """Real processes: the owner is killed (no goodbye); after node_ttl_s the process that relayed takes the
    room, the relayed peer rejoins through it by itself, and the other doctor, sent there by the load
    balancer, gets video again."""
    env = {**cli_env(demo_dsn), "PSC119_SERVER_NODE_TTL_S": "2", "PSC119_SERVER_VAR_DIR": str(tmp_path)}
    servers = [await Served.start(["serve", "--port", "0"], env, tmp_path / f"serve{n}.log") for n in range(2)]
    session = aiohttp.ClientSession()
    peers: list[ConsultPeer] = []
    tasks: list[asyncio.Task[None]] = []
    try:
        a, b = (Remote(None, session, demo_dsn, base=s.url) for s in servers)  # type: ignore[arg-type]
        room = await open_room(a)

        def doctor(api: Remote, who: str) -> ConsultPeer:
            join = room.puskesmas if who == "puskesmas" else room.specialist
            url = api.url(f"/ws/consults/{room.consult_id}").replace("http://", "ws://")
            return ConsultPeer(url, str(join["token"]), source=SyntheticSource(160, 120), ice_host_addresses=LOOPBACK)

        pk_id, sp_id = str(room.puskesmas["member"]), str(room.specialist["member"])
        ani = doctor(a, "puskesmas")
        peers.append(ani)
        tasks += await run_peers(ani)
        await ani.wait_until(lambda: ani.stats.joins == 1, 10)
        budi = doctor(b, "specialist")  # relayed by b to a
        peers.append(budi)
        tasks += await run_peers(budi)
        await ani.wait_until(lambda: min(ani.stats.video_from(sp_id), budi.stats.video_from(pk_id)) >= 20, 15)
        assert await owner(con, room.consult_id) == servers[0].url

        await servers[0].kill()
        seen = budi.stats.video_from(pk_id)
        # budi's relayed socket is closed with "try again"; it rejoins through b, which takes the room
        # once a has been silent for node_ttl_s.
        await budi.wait_until(lambda: budi.stats.joins == 2, 15)
        assert await owner(con, room.consult_id) == servers[1].url
        ani_again = doctor(b, "puskesmas")
        peers.append(ani_again)
        tasks += await run_peers(ani_again)
        await budi.wait_until(lambda: budi.stats.video_from(pk_id) >= seen + 20 and ani_again.stats.video_from(sp_id) >= 20, 15)
        await budi.send_chat("kembali tersambung")
        await ani_again.wait_until(lambda: any(c.text == "kembali tersambung" for c in ani_again.chats), 5)
    finally:
        await stop_peers(peers, tasks)
        await session.close()
        for served in servers:
            await served.kill()


async def test_an_owner_restarted_at_its_address_takes_its_rooms_back_at_once(demo_dsn: str, con: asyncpg.Connection, tmp_path: Path) -> None:
    """Real processes, node_ttl_s 60: the owner is killed and started again on the same port; the
    members rejoin at once (through it, and relayed through the other process), not after 60 s."""
    env = {**cli_env(demo_dsn), "PSC119_SERVER_NODE_TTL_S": "60", "PSC119_SERVER_VAR_DIR": str(tmp_path)}
    port = free_port()
    session = aiohttp.ClientSession()
    servers = [
        await Served.start(["serve", "--port", str(port)], env, tmp_path / "owner.log"),
        await Served.start(["serve", "--port", "0"], env, tmp_path / "other.log"),
    ]
    try:
        a, b = (Remote(None, session, demo_dsn, base=s.url) for s in servers)  # type: ignore[arg-type]
        consult_id, pk, sp = await accepted_consult(a)
        pk_ws, _ = await join(a, consult_id, await token_for(a, consult_id, pk))
        sp_ws, _ = await join(b, consult_id, await token_for(b, consult_id, sp))  # relayed to a
        await recv(pk_ws, "presence")
        key = uuid.UUID(consult_id)
        killed_node = await con.fetchval("SELECT node FROM room_owners WHERE consult_id = $1", key)
        assert await owner(con, consult_id) == servers[0].url

        await servers[0].kill()
        servers[0] = await Served.start(["serve", "--port", str(port)], env, tmp_path / "owner-again.log")
        assert servers[0].url == a.base
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(sp_ws.recv(), 5)  # the relay to the dead owner is gone
        # Both come back within seconds, far inside node_ttl_s: the room is built again on the restarted process.
        pk_ws, welcome = await asyncio.wait_for(join(a, consult_id, await token_for(a, consult_id, pk)), 10)
        assert welcome["peers"] == []
        sp_ws, welcome = await asyncio.wait_for(join(b, consult_id, await token_for(b, consult_id, sp)), 10)
        assert [p["role"] for p in welcome["peers"]] == ["requester"]
        assert (await recv(pk_ws, "presence"))["role"] == "specialist"
        node = await con.fetchval("SELECT node FROM room_owners WHERE consult_id = $1", key)
        assert node != killed_node and await owner(con, consult_id) == a.base
        assert await con.fetchval("SELECT seen_at > now() - interval '60 seconds' FROM nodes WHERE id = $1", node)
        await pk_ws.close()
        await sp_ws.close()
    finally:
        await session.close()
        for served in servers:
            await served.kill()
