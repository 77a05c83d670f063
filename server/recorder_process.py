"""``python -m server.recorder_process``: one consult's recorder as a process of its own.

The server starts one per recording (`server.recording`): a
`signaling.recorder.ConsultRecorder` whose video encoding then never stalls the
server's event loop. It logs like the server (``--log-format``, phone numbers
redacted), to standard error, which it shares with the server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from server.logs import setup_logging
from signaling.recorder import ConsultRecorder


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m server.recorder_process",
        description="Record a consult room to a WebM file. The join token is read from the first line of "
        "standard input (never from the command line, where other users could see it). SIGTERM or SIGINT "
        "stops and flushes the file; the last line on standard output is the result as JSON.",
    )
    parser.add_argument("--room", required=True, help="ws:// or wss:// URL of the consult's room")
    parser.add_argument("--out", required=True, type=Path, help="the .webm file to write")
    parser.add_argument("--ice-host", action="append", default=[], help="gather ICE host candidates only on this IP")
    parser.add_argument("--fps", type=int, default=15)
    parser.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    parser.add_argument("--log-format", default="text", choices=("text", "json"))
    return parser


async def _main(args: argparse.Namespace, token: str) -> dict[str, object]:
    recorder = ConsultRecorder(
        args.room, token, args.out, ice_host_addresses=args.ice_host or None, fps=args.fps,
    )  # fmt: skip
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, recorder.stop)
    result = await recorder.run()
    if result is None:
        return {"admitted": False}
    return {"admitted": True, **{k: str(v) if isinstance(v, Path) else v for k, v in asdict(result).items()}}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    setup_logging(args.log_format, args.log_level)
    token = sys.stdin.readline().strip()
    outcome = asyncio.run(_main(args, token))
    sys.stdout.write(json.dumps(outcome) + "\n")
    sys.stdout.flush()
    return 0 if outcome["admitted"] else 3


if __name__ == "__main__":
    sys.exit(main())
