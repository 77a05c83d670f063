"""``psc119 peer``: join a consult's video room as an aiortc peer (the puskesmas kiosk).

Sends a file (``--play``) or a synthetic camera and tone, receives the other
doctor, and prints one status line per event to stdout, for people and scripts::

    joined consult=<id> user=<id> role=requester generation=1 peers=1
    connected peer=<id>
    frames video=<n> audio=<n> fps=<video frames per second over the last interval>
    refused code=4409 reason=<text>

Runs until Ctrl-C or SIGTERM (exit 0) or until the room refuses it (exit 1).
With ``--session-file`` it asks the server for its join tokens itself (`server.peer_tokens`),
so a call outlives the token's lifetime; a token that starts with ``-`` is given as ``--token=$T``.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time

from server import peer_tokens
from server.config import Config
from signaling.media import SyntheticSource, file_source
from signaling.peer import ConsultPeer, PeerRefused, room_url


def add_parser(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    peer = commands.add_parser("peer", help="join a consult's video room as an aiortc peer")
    peer.add_argument("--consult", required=True, help="the consult id")
    peer.add_argument("--token", help="the join token from POST /api/consults/{id}/join (write --token=$T: a token may start with -)")
    peer.add_argument("--session-file", metavar="FILE", help="a file holding a session token: join tokens are asked for, and renewed, with it")
    peer.add_argument("--server", default="http://127.0.0.1:8119", help="the psc119 server (default %(default)s)")
    peer.add_argument("--play", metavar="FILE", help="send this audio/video file (looped) instead of a synthetic camera and tone")
    peer.add_argument("--ice-host", metavar="ADDR", action="append", default=[], help="gather ICE host candidates only on this IP (repeatable)")
    peer.add_argument("--consent-recording", action=argparse.BooleanOptionalAction, default=None, help="give (or refuse) consent to recording")
    peer.add_argument("--status-interval", type=float, default=1.0, help="seconds between frame counts (default %(default)s)")


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def run_peer(args: argparse.Namespace, config: Config) -> int:
    token, renew = await peer_tokens.join_token(args)
    source = file_source(args.play) if args.play else SyntheticSource()
    peer = ConsultPeer(
        room_url(args.server, args.consult),
        token,
        source=source,
        ice_host_addresses=args.ice_host or None,
        consent_recording=args.consent_recording,
        heartbeat=config.consult.heartbeat_s,
        renew_token=renew,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    task = asyncio.create_task(peer.run())
    stopper = asyncio.create_task(stop.wait())
    joins, connected, last_video, last_time = 0, set[str](), 0, time.monotonic()
    try:
        while not task.done() and not stop.is_set():
            await asyncio.wait({task, stopper}, timeout=min(0.2, args.status_interval))
            welcome = peer.welcome
            if welcome is not None and peer.stats.joins != joins:
                joins = peer.stats.joins
                _say(
                    f"joined consult={welcome.consult} user={welcome.user} role={welcome.role.value} "
                    f"generation={welcome.generation} peers={len(welcome.peers)}"
                )
            now_connected = {str(user) for user in peer.peer_connections if peer.connected_to(user)}
            for user in sorted(now_connected - connected):
                _say(f"connected peer={user}")
            connected = now_connected
            now = time.monotonic()
            if now - last_time >= args.status_interval:
                video = peer.stats.video_frames
                fps = (video - last_video) / (now - last_time)
                _say(f"frames video={video} audio={peer.stats.audio_frames} fps={fps:.1f}")
                last_video, last_time = video, now
    finally:
        stopper.cancel()
        await peer.stop()
        refused: PeerRefused | None = None
        try:
            await task
        except PeerRefused as exc:
            refused = exc
        for track in (source.audio, source.video):
            if track is not None:
                track.stop()
    if refused is not None:
        _say(f"refused code={refused.code} reason={refused.reason}")
        return 1
    _say(f"stopped frames video={peer.stats.video_frames} audio={peer.stats.audio_frames}")
    return 0
