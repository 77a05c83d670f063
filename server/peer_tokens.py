"""Join tokens for ``psc119 peer`` from the kiosk's session, the way the pages get theirs.

A join token lives ``consult.join_token_ttl_s`` (30 min); a kiosk in a longer call
needs a new one for its next rejoin. Given a session token (``--session-file``: the
``token`` of ``POST /api/auth/login``, kept in a file so it is not on the command
line), the peer asks ``POST /api/consults/{id}/join`` for a join token at start and
whenever the room refuses its token. The session stays the credential: when it is
revoked or expires, the room closes the call with 4401 ``session_revoked`` /
``session_expired``, and asking for a token is refused with 401, which ends the peer.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

from signaling.errors import InvalidMessage
from signaling.messages import parse_ice_servers
from signaling.peer import PeerRefused
from signaling.turn import IceServer

Renew = Callable[[], Awaitable[str]]

# What a refused request for a join token means for the peer: the room's close codes.
_REFUSALS = {401: 4401, 403: 4403, 404: 4403, 409: 4409}


def read_session(path: str) -> str:
    """The session token: the first line of the file."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    if not lines or not lines[0].strip():
        raise ValueError(f"{path}: no session token on its first line")
    return lines[0].strip()


def session_renewer(server: str, consult_id: str, session: str) -> Renew:
    """A callable returning a fresh join token; `PeerRefused` when the server refuses one, OSError when it
    cannot be reached (the peer tries again)."""
    join = _session_join(server, consult_id, session)

    async def renew() -> str:
        return str((await join())["token"])

    return renew


def _session_join(server: str, consult_id: str, session: str) -> Callable[[], Awaitable[dict[str, object]]]:
    """A callable returning a join response (its ``token`` checked); refusals as in `session_renewer`."""
    url = f"{server.rstrip('/')}/api/consults/{consult_id}/join"

    async def join() -> dict[str, object]:
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
                async with http.post(url, headers={"Authorization": f"Bearer {session}"}) as response:
                    status = response.status
                    body = await response.json(content_type=None) if status in (200, *_REFUSALS) else {}
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise OSError(f"asking for a join token failed: {exc}") from exc
        if status == 200 and isinstance(body, dict) and isinstance(body.get("token"), str):
            return body
        if status in _REFUSALS:
            error = body.get("error") if isinstance(body, dict) else None
            code = error.get("code") if isinstance(error, dict) else None
            raise PeerRefused(_REFUSALS[status], str(code or f"join token refused ({status})"))
        raise OSError(f"asking for a join token: HTTP {status}")

    return join


async def join_token(args: argparse.Namespace) -> tuple[str, Renew | None, tuple[IceServer, ...] | None]:
    """The token to join with (``--token``, or one asked with ``--session-file``), how to renew it, and the ICE
    servers of the join response when one was asked for (the peer prepares its first connection with them)."""
    if args.session_file is None:
        if not args.token:
            raise ValueError("give --token or --session-file")
        return args.token, None, None
    session = read_session(args.session_file)
    renew = session_renewer(args.server, args.consult, session)
    if args.token:
        return args.token, renew, None
    try:
        body = await _session_join(args.server, args.consult, session)()
    except PeerRefused as exc:
        raise ValueError(f"no join token: refused code={exc.code} reason={exc.reason}") from None
    try:
        ice = parse_ice_servers(body.get("ice_servers"))
    except InvalidMessage:
        ice = None  # the welcome brings them too
    return str(body["token"]), renew, ice
