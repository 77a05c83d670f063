"""A SATUSEHAT client: OAuth2 client credentials, then a FHIR transaction Bundle POSTed to the FHIR base.

SATUSEHAT's token endpoint takes ``grant_type=client_credentials`` in the query and the
client id and secret as a form, and answers ``access_token`` with ``expires_in`` (seconds,
sent as a string). The token is kept until a minute before it expires and shared by every
send; a send answered 401 (a token revoked early) gets one new token and one retry.
Nothing is sent unless ``satusehat.auth_url`` is set.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp import web
from fhir.resources.R4B.bundle import Bundle

from server.config import SatusehatSettings
from server.errors import BadGateway
from server.fhir_bundles import Identifiers
from server.keys import CONFIG, SATUSEHAT

log = logging.getLogger(__name__)

# A token is renewed this long before SATUSEHAT says it expires, so no request carries one that lapses in flight.
RENEW_BEFORE_S = 60.0


def identifiers(settings: SatusehatSettings) -> Identifiers:
    def table(pairs: tuple[str, ...]) -> dict[str, str]:
        return {code.strip(): value.strip() for code, value in (p.split("=") for p in pairs)}

    return Identifiers(settings.organization_id, table(settings.organization_ids), table(settings.location_ids))


async def client_context(app: web.Application) -> AsyncIterator[None]:
    """The app's client while it runs, when configured."""
    settings = app[CONFIG].satusehat
    if not settings.enabled:
        app[SATUSEHAT] = None
        yield
        return
    async with aiohttp.ClientSession() as session:
        app[SATUSEHAT] = Satusehat(settings, session)
        yield


class Satusehat:
    def __init__(self, settings: SatusehatSettings, session: aiohttp.ClientSession) -> None:
        self._settings = settings
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=settings.timeout_s)
        self._token: str | None = None
        self._expires = 0.0
        self._renewing = asyncio.Lock()  # one token request at a time, whatever the number of sends waiting

    async def send(self, bundle: Bundle) -> dict[str, Any]:
        """POST a transaction bundle; SATUSEHAT's transaction-response bundle, or BadGateway naming what failed."""
        body = bundle.model_dump_json(exclude_none=True)
        token = await self._current_token()
        status, answer = await self._post_bundle(body, token)
        if status == 401:
            token = await self._current_token(refused=token)
            status, answer = await self._post_bundle(body, token)
        if status not in (200, 201):
            log.warning("SATUSEHAT refused a bundle: HTTP %s", status)
            raise BadGateway(f"SATUSEHAT answered HTTP {status}", field="satusehat", extra={"satusehat": answer})
        if not isinstance(answer, dict):
            raise BadGateway("SATUSEHAT's answer is not a FHIR Bundle", field="satusehat")
        return answer

    async def _post_bundle(self, body: str, token: str) -> tuple[int, Any]:
        try:
            async with self._session.post(
                self._settings.base_url.rstrip("/"), data=body, timeout=self._timeout,
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"},
            ) as response:
                return response.status, await _json_or_text(response)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise BadGateway(f"SATUSEHAT could not be reached: {type(exc).__name__}", field="satusehat") from None

    async def _current_token(self, refused: str | None = None) -> str:
        async with self._renewing:
            if self._token is not None and self._token != refused and time.monotonic() < self._expires:
                return self._token
            self._token, lifetime = await self._new_token()
            self._expires = time.monotonic() + max(0.0, lifetime - RENEW_BEFORE_S)
            return self._token

    async def _new_token(self) -> tuple[str, float]:
        s = self._settings
        try:
            async with self._session.post(
                f"{s.auth_url.rstrip('/')}/accesstoken", params={"grant_type": "client_credentials"},
                data={"client_id": s.client_id, "client_secret": s.client_secret}, timeout=self._timeout,
            ) as response:
                answer = await _json_or_text(response)
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise BadGateway(f"SATUSEHAT's token endpoint could not be reached: {type(exc).__name__}", field="satusehat") from None
        if status != 200 or not isinstance(answer, dict) or not isinstance(answer.get("access_token"), str):
            log.warning("SATUSEHAT refused the client credentials: HTTP %s", status)
            raise BadGateway(f"SATUSEHAT refused the client credentials (HTTP {status})", field="satusehat.client_id")
        try:
            lifetime = float(answer.get("expires_in", 0))
        except (TypeError, ValueError):
            lifetime = 0.0  # an unreadable lifetime: use the token for this send only
        return answer["access_token"], lifetime


async def _json_or_text(response: aiohttp.ClientResponse) -> Any:
    text = await response.text()
    try:
        return json.loads(text)
    except ValueError:
        return text[:2000]
