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

from signaling.peer import PeerRefused

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
    url = f"{server.rstrip('/')}/api/consults/{consult_id}/join"

    async def renew() -> str:
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
                async with http.post(url, headers={"Authorization": f"Bearer {session}"}) as response:
                    status = response.status
                    body = await response.json(content_type=None) if status in (200, *_REFUSALS) else {}
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise OSError(f"asking for a join token failed: {exc}") from exc
        if status == 200 and isinstance(body, dict) and isinstance(body.get("token"), str):
            return str(body["token"])
        if status in _REFUSALS:
            error = body.get("error") if isinstance(body, dict) else None
            code = error.get("code") if isinstance(error, dict) else None
            raise PeerRefused(_REFUSALS[status], str(code or f"join token refused ({status})"))
        raise OSError(f"asking for a join token: HTTP {status}")

    return renew


async def join_token(args: argparse.Namespace) -> tuple[str, Renew | None]:
    """The token to join with (``--token``, or one asked with ``--session-file``) and how to renew it."""
    if args.session_file is None:
        if not args.token:
            raise ValueError("give --token or --session-file")
        return args.token, None
    renew = session_renewer(args.server, args.consult, read_session(args.session_file))
    if args.token:
        return args.token, renew
    try:
        return await renew(), renew
    except PeerRefused as exc:
        raise ValueError(f"no join token: refused code={exc.code} reason={exc.reason}") from None
