"""``psc119 peer``: join a consult's video room as an aiortc peer (the puskesmas kiosk).

Sends a file (``--play``) or a synthetic camera and tone, receives the other
doctor, and prints one status line per event to stdout, for people and scripts::

    joined consult=<id> user=<id> role=requester generation=1 peers=1
    connected peer=<id>
    frames video=<n> audio=<n> fps=<video frames per second over the last interval>
    mode peer=<id> sending=video|audio_only|text_only receiving=<the same, as the other side says>
    refused code=4409 reason=<text>

Runs until Ctrl-C or SIGTERM (exit 0) or until the room refuses it (exit 1).
With ``--session-file`` it asks the server for its join tokens itself (`server.peer_tokens`),
so a call outlives the token's lifetime; a token that starts with ``-`` is given as ``--token=$T``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import re
import signal
import sys
import time
from typing import Any

from server import peer_tokens
from server.config import Config
from signaling.bandwidth import AdaptPolicy
from signaling.errors import InvalidValue
from signaling.ids import UserId
from signaling.link_quality import AdaptOptions
from signaling.media import SyntheticSource, file_source
from signaling.peer import ConsultPeer, PeerRefused, room_url

DEFAULTS = AdaptPolicy()

_SIZE = re.compile(r"([1-9][0-9]{1,3})x([1-9][0-9]{1,3})")


def _resolution(value: str) -> tuple[int, int]:
    match = _SIZE.fullmatch(value)
    if match is None or int(match.group(1)) % 2 or int(match.group(2)) % 2:
        raise argparse.ArgumentTypeError("must be WIDTHxHEIGHT, even numbers, e.g. 320x240")
    return int(match.group(1)), int(match.group(2))


def add_parser(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    peer = commands.add_parser("peer", help="join a consult's video room as an aiortc peer")
    peer.add_argument("--consult", required=True, help="the consult id")
    peer.add_argument("--token", help="the join token from POST /api/consults/{id}/join (write --token=$T: a token may start with -)")
    peer.add_argument("--session-file", metavar="FILE", help="a file holding a session token: join tokens are asked for, and renewed, with it")
    peer.add_argument("--server", default="http://127.0.0.1:8119", help="the psc119 server (default %(default)s)")
    peer.add_argument("--play", metavar="FILE", help="send this audio/video file (looped) instead of a synthetic camera and tone")
    peer.add_argument("--ice-host", metavar="ADDR", action="append", default=[], help="gather ICE host candidates only on this IP (repeatable)")
    peer.add_argument("--consent-recording", action=argparse.BooleanOptionalAction, default=None, help="give (or refuse) consent to recording")
    peer.add_argument("--relay-only", action="store_true", help="connect through the TURN relay only (no peer-to-peer)")
    peer.add_argument("--max-bitrate", type=int, metavar="BIT/S", help="never send more video than this (default: adapt up to 1500000)")
    peer.add_argument(
        "--min-fps", type=float, default=DEFAULTS.min_fps, help="audio only below this many frames/s at the other end (default %(default)s)"
    )
    peer.add_argument("--resolution", type=_resolution, metavar="WxH", help="never send a larger picture than this (default: the source's)")
    peer.add_argument("--audio-only", action="store_true", help="send no video at all")
    peer.add_argument("--status-interval", type=float, default=1.0, help="seconds between frame counts (default %(default)s)")


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def adapt_options(args: argparse.Namespace) -> AdaptOptions:
    """The adaptation the command line asks for (InvalidValue naming a bad option)."""
    limits: dict[str, Any] = {"min_fps": args.min_fps}
    if args.max_bitrate is not None:
        if args.max_bitrate < 10_000:
            raise InvalidValue("max_bitrate", "must be at least 10000 bit/s")
        limits["max_bitrate"] = args.max_bitrate
        limits["start_bitrate"] = min(DEFAULTS.start_bitrate, args.max_bitrate)
        limits["min_bitrate"] = min(DEFAULTS.min_bitrate, args.max_bitrate)
    policy = dataclasses.replace(DEFAULTS, **limits)
    return AdaptOptions(policy, max_size=args.resolution, video=not args.audio_only)


async def run_peer(args: argparse.Namespace, config: Config) -> int:
    try:
        adapt = adapt_options(args)
    except InvalidValue as exc:
        _say(f"invalid --{exc.field.replace('_', '-') if exc.field else 'option'}: {exc.reason}")
        return 2
    token, renew = await peer_tokens.join_token(args)
    source = file_source(args.play) if args.play else SyntheticSource()
    if args.audio_only and source.video is not None:
        source.video.stop()
        source.video = None
    peer = ConsultPeer(
        room_url(args.server, args.consult),
        token,
        source=source,
        ice_host_addresses=args.ice_host or None,
        consent_recording=args.consent_recording,
        relay_only=args.relay_only,
        adapt=adapt,
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
    modes: dict[str, tuple[str, str]] = {}
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
            for user in sorted(now_connected):
                sending = peer.sending_modes.get(UserId(user))
                receiving = peer.receiving_modes.get(UserId(user))
                mode = (sending.value if sending else "video", receiving.value if receiving else "video")
                if modes.get(user, ("video", "video")) != mode:
                    _say(f"mode peer={user} sending={mode[0]} receiving={mode[1]}")
                modes[user] = mode
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
