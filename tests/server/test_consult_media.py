"""Consult video through the real app: real aiortc peers joining the real signaling
room over loopback (ICE host addresses pinned to 127.0.0.1, no ICE servers), media
both ways, chat, recovery after a drop, consented recording, and ``psc119 peer``."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import signal
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import av
import pytest

from server.config import Config, RecordingSettings, ServerSettings
from signaling.media import SyntheticSource
from signaling.peer import ConsultPeer
from tests.conftest import PSC119, REPO, Api, app_config, start_api
from tests.server.test_consults import close_api, request_consult
from tests.signaling.media_checks import assert_both_doctors_recorded
from tests.signaling.room_relay import run_peers as run
from tests.signaling.room_relay import stop_peers as stop

LOOPBACK = ["127.0.0.1"]


def media_config(dsn: str, var_dir: Path) -> Config:
    base = app_config(dsn)
    return dataclasses.replace(
        base,
        server=ServerSettings(var_dir=str(var_dir)),
        recording=RecordingSettings(ice_host_addresses=("127.0.0.1",), video_fps=15),
    )


@pytest.fixture
async def mapi(demo_dsn: str, tmp_path: Path) -> AsyncIterator[Api]:
    client = await start_api(demo_dsn, media_config(demo_dsn, tmp_path))
    yield client
    await close_api(client)


@dataclasses.dataclass
class Room:
    consult_id: str
    url: str
    puskesmas: dict[str, object]  # the join response of each doctor
    specialist: dict[str, object]


async def open_room(api: Api, *, turn: bool = False) -> Room:
    """The whole way in: a puskesmas doctor requests, the specialist goes on call and
    accepts, both ask for a join token."""
    pk, sp = await api.login("puskesmas"), await api.login("specialist")
    status, body = await api.call("PUT", "/api/oncall", sp, json={"specialty": "jantung", "on_call": True})
    assert status == 200, body
    status, body = await request_consult(api, pk)
    assert status == 201, body
    consult_id = body["consult"]["id"]
    status, body = await api.call("POST", f"/api/consults/{consult_id}/accept", sp)
    assert status == 200, body
    joins = []
    for token in (pk, sp):
        status, body = await api.call("POST", f"/api/consults/{consult_id}/join", token)
        assert status == 200, body
        assert body["room_url"] == f"/ws/consults/{consult_id}" and bool(body["ice_servers"]) == turn
        joins.append(body)
    url = api.url(joins[0]["room_url"]).replace("http://", "ws://")
    return Room(consult_id, url, joins[0], joins[1])


def peer(room: Room, who: str, **options: object) -> ConsultPeer:
    join = room.puskesmas if who == "puskesmas" else room.specialist
    return ConsultPeer(
        room.url, str(join["token"]), source=SyntheticSource(160, 120), ice_host_addresses=LOOPBACK, **options  # type: ignore[arg-type]
    )


def member(room: Room, who: str) -> str:
    join = room.puskesmas if who == "puskesmas" else room.specialist
    return str(join["member"])


async def test_two_aiortc_doctors_see_and_hear_each_other_and_chat(mapi: Api) -> None:
    room = await open_room(mapi)
    ani, budi = peer(room, "puskesmas"), peer(room, "specialist")
    pk_id, sp_id = member(room, "puskesmas"), member(room, "specialist")
    started = time.monotonic()
    tasks = await run(ani, budi)
    try:
        await ani.wait_until(lambda: ani.connected_to(sp_id) and budi.connected_to(pk_id), 10)
        connected = time.monotonic() - started
        await ani.wait_until(lambda: min(ani.stats.video_from(sp_id), budi.stats.video_from(pk_id)) >= 20, 10)
        await ani.wait_until(lambda: min(ani.stats.audio_from(sp_id), budi.stats.audio_from(pk_id)) >= 20, 10)
        for doctor in (ani, budi):  # when the first frame was decoded (benchmarks time joins by it)
            first_video, first_connected = doctor.stats.first_video_at, doctor.stats.first_connected_at
            assert first_video is not None and first_connected is not None
            assert started < first_connected <= first_video < time.monotonic()
        assert ani.welcome is not None and ani.welcome.role.value == "requester"
        assert budi.welcome is not None and budi.welcome.role.value == "specialist"
        await budi.send_chat("Kirim EKG 12 lead ulang, sadapan V1-V6")
        await ani.wait_until(lambda: len(ani.chats) == 1, 5)
        await ani.send_chat("Baik dok, sedang direkam")
        await budi.wait_until(lambda: len(budi.chats) == 1, 5)
        assert (ani.chats[0].sender, ani.chats[0].text) == (sp_id, "Kirim EKG 12 lead ulang, sadapan V1-V6")
        assert (budi.chats[0].sender, budi.chats[0].text) == (pk_id, "Baik dok, sedang direkam")
        assert connected < 5
    finally:
        await stop([ani, budi], tasks)
    # The chat is stored with the consult, and both doctors being there started the session.
    pk = await mapi.login("puskesmas")
    _, chat = await mapi.call("GET", f"/api/consults/{room.consult_id}/chat", pk)
    assert [m["text"] for m in chat["messages"]] == ["Kirim EKG 12 lead ulang, sadapan V1-V6", "Baik dok, sedang direkam"]
    _, seen = await mapi.call("GET", f"/api/consults/{room.consult_id}", pk)
    assert seen["consult"]["state"] == "in_session"


@pytest.mark.parametrize("who", ["puskesmas", "specialist"])
async def test_a_dropped_peer_rejoins_and_media_flows_again(mapi: Api, who: str) -> None:
    room = await open_room(mapi)
    ani, budi = peer(room, "puskesmas"), peer(room, "specialist")
    dropped, other = (ani, budi) if who == "puskesmas" else (budi, ani)
    me, them = member(room, who), member(room, "specialist" if who == "puskesmas" else "puskesmas")
    tasks = await run(ani, budi)
    try:
        await ani.wait_until(lambda: dropped.stats.video_from(them) >= 10 and other.stats.video_from(me) >= 10, 10)
        ws, pc = dropped.websocket, dropped.peer_connections[them]
        assert ws is not None
        # The puskesmas network goes: the socket dies without a goodbye, the call with it.
        ws.transport.abort()
        await pc.close()
        t0 = time.monotonic()
        seen_by_other, seen_by_dropped = other.stats.video_from(me), dropped.stats.video_from(them)
        await ani.wait_until(lambda: dropped.stats.joins == 2, 5)
        await ani.wait_until(lambda: other.stats.video_from(me) >= seen_by_other + 20, 5)
        await ani.wait_until(lambda: dropped.stats.video_from(them) >= seen_by_dropped + 20, 5)
        await ani.wait_until(lambda: dropped.stats.audio_from(them) > 0 and other.stats.audio_from(me) > 0, 1)
        recovered = time.monotonic() - t0
        assert dropped.peer_connections[them] is not pc
        assert other.stats.joins == 1  # the other side did nothing by hand
        assert recovered < 5
    finally:
        await stop([ani, budi], tasks)


async def _recordings(api: Api, consult_id: str) -> list[dict[str, object]]:
    import asyncpg

    con = await asyncpg.connect(api.dsn)
    try:
        rows = await con.fetch(
            "SELECT path, started_at, ended_at, bytes FROM consult_recordings WHERE consult_id = $1", uuid.UUID(consult_id)
        )
        return [dict(r) for r in rows]
    finally:
        await con.close()


async def consenting_call(room: Room) -> tuple[ConsultPeer, ConsultPeer, list[asyncio.Task[None]]]:
    """Both doctors join consenting; returns once the recorder is connected to both."""
    ani, budi = peer(room, "puskesmas", consent_recording=True), peer(room, "specialist", consent_recording=True)
    tasks = await run(ani, budi)
    try:
        await ani.wait_until(lambda: ani.connected_to("recorder") and budi.connected_to("recorder"), 10)
    except BaseException:
        await stop([ani, budi], tasks)
        raise
    return ani, budi, tasks


async def filed_recording(api: Api, consult_id: str) -> dict[str, object]:
    """The consult's one recording row, once the recorder has filed it."""
    rows: list[dict[str, object]] = []
    async with asyncio.timeout(10):
        while not rows:
            rows = await _recordings(api, consult_id)
            await asyncio.sleep(0.05)
    [row] = rows
    return row


async def test_with_every_consent_the_recorder_writes_a_playable_file(mapi: Api, tmp_path: Path) -> None:
    room = await open_room(mapi)
    pk_id, sp_id = member(room, "puskesmas"), member(room, "specialist")
    # The recorder joins by itself once both consented; the doctors offer to it.
    ani, budi, tasks = await consenting_call(room)
    try:
        assert ani.recording_allowed and budi.recording_allowed
        await asyncio.sleep(3)
        assert ani.stats.video_from(sp_id) >= 20 and budi.stats.video_from(pk_id) >= 20
        await ani.hangup("selesai")  # a bye: the recorder stops and files the recording
        await budi.wait_until(lambda: "recorder" not in budi.present, 10)
        row = await filed_recording(mapi, room.consult_id)
    finally:
        await stop([ani, budi], tasks)
    path = Path(str(row["path"]))
    assert path.parent == tmp_path / "recordings"
    assert re.fullmatch(rf"{room.consult_id}-\d{{8}}T\d{{6}}Z\.webm", path.name)
    assert row["bytes"] == path.stat().st_size > 0
    with av.open(str(path)) as container:  # PyAV reads it: three streams and a duration
        assert len(container.streams) == 3 and container.duration is not None
    duration = assert_both_doctors_recorded(path)
    span = (row["ended_at"] - row["started_at"]).total_seconds()  # type: ignore[operator]
    assert 2.5 <= duration <= span + 0.5


async def test_without_every_consent_no_recorder_joins_and_no_file_exists(mapi: Api, tmp_path: Path) -> None:
    room = await open_room(mapi)
    ani, budi = peer(room, "puskesmas", consent_recording=True), peer(room, "specialist", consent_recording=False)
    sp_id = member(room, "specialist")
    tasks = await run(ani, budi)
    try:
        await ani.wait_until(lambda: ani.stats.video_from(sp_id) >= 30, 10)
        await asyncio.sleep(1)
        assert not ani.recording_allowed and not budi.recording_allowed
        assert "recorder" not in ani.present and "recorder" not in budi.present
    finally:
        await stop([ani, budi], tasks)
    assert await _recordings(mapi, room.consult_id) == []
    recordings = tmp_path / "recordings"
    assert not recordings.exists() or list(recordings.iterdir()) == []


async def test_psc119_peer_command_joins_and_receives_frames(mapi: Api, tmp_path: Path) -> None:
    room = await open_room(mapi)
    sp_id = member(room, "specialist")
    server = mapi.url("/").rstrip("/")
    settings = tmp_path / "peer.toml"
    settings.write_text("", encoding="utf-8")  # defaults, whatever ./config.toml says
    proc = await asyncio.create_subprocess_exec(
        *PSC119, "--config", str(settings), "peer", "--consult", room.consult_id, "--token", str(room.puskesmas["token"]),
        "--server", server, "--ice-host", "127.0.0.1", "--status-interval", "0.5",
        cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    budi = peer(room, "specialist")
    tasks = await run(budi)
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(20):
            while True:
                line = (await proc.stdout.readline()).decode()
                if not line:
                    err = await proc.stderr.read() if proc.stderr else b""
                    raise AssertionError(f"psc119 peer ended early: {lines} {err.decode()[-3000:]}")
                lines.append(line.strip())
                match = re.fullmatch(r"frames video=(\d+) audio=(\d+) fps=[\d.]+", lines[-1])
                if match and int(match[1]) >= 20 and int(match[2]) >= 20:
                    break
        assert any(re.fullmatch(rf"joined consult={room.consult_id} user=\d+ role=requester generation=1 peers=\d", x) for x in lines)
        assert f"connected peer={sp_id}" in lines
        await budi.wait_until(lambda: budi.stats.video_from(member(room, "puskesmas")) >= 20, 10)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(proc.communicate(), 10)
        await stop([budi], tasks)
    assert proc.returncode == 0, err.decode()[-2000:]
    assert out.decode().strip().splitlines()[-1].startswith("stopped frames video=")


async def test_withdrawn_consent_stops_the_recorder_and_files_what_it_has(mapi: Api) -> None:
    room = await open_room(mapi)
    ani, budi, tasks = await consenting_call(room)
    try:
        await asyncio.sleep(3)  # long enough for both pictures to reach the recorder
        await budi.set_consent(False)
        await ani.wait_until(lambda: not ani.recording_allowed and "recorder" not in ani.present, 10)
        row = await filed_recording(mapi, room.consult_id)
        # The call itself goes on without the recorder.
        seen = ani.stats.video_from(member(room, "specialist"))
        await ani.wait_until(lambda: ani.stats.video_from(member(room, "specialist")) >= seen + 20, 5)
        assert "recorder" not in budi.present
    finally:
        await stop([ani, budi], tasks)
    assert assert_both_doctors_recorded(Path(str(row["path"]))) >= 1.0


async def test_a_recording_under_way_is_flushed_and_filed_when_the_server_stops(demo_dsn: str, tmp_path: Path) -> None:
    api = await start_api(demo_dsn, media_config(demo_dsn, tmp_path))
    closed = False
    try:
        room = await open_room(api)
        ani, budi, tasks = await consenting_call(room)
        try:
            await asyncio.sleep(3)  # long enough for both pictures to reach the recorder
            await close_api(api)  # shutdown: the recorders' cleanup stops and files them first
            closed = True
        finally:
            await stop([ani, budi], tasks)
        rows = await _recordings(api, room.consult_id)
    finally:
        if not closed:
            await close_api(api)
    [row] = rows
    assert assert_both_doctors_recorded(Path(str(row["path"]))) >= 1.0
