"""Sending bundles to SATUSEHAT: against a loopback server that speaks its protocol (OAuth2 client credentials, then a
FHIR transaction POSTed to the base), since the real one is out of reach here."""

from __future__ import annotations

import dataclasses
import secrets
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from fhir.resources.R4B.bundle import Bundle

from server.config import SatusehatSettings
from tests.conftest import Api, app_config, start_api
from tests.server.dispatch_support import call_body
from tests.server.test_consults import close_api

CLIENT_ID, CLIENT_SECRET = "psc119-tangsel", "s3cret-client"


@dataclasses.dataclass
class FakeSatusehat:
    """SATUSEHAT's token endpoint and FHIR base: valid tokens, the bundles received, what each answered."""

    tokens: set[str] = dataclasses.field(default_factory=set)
    token_requests: int = 0
    bundles: list[Bundle] = dataclasses.field(default_factory=list)

    async def access_token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if request.query.get("grant_type") != "client_credentials":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        if (form.get("client_id"), form.get("client_secret")) != (CLIENT_ID, CLIENT_SECRET):
            return web.json_response({"error": "invalid_client"}, status=401)
        self.token_requests += 1
        token = secrets.token_hex(8)
        self.tokens.add(token)
        # As SATUSEHAT sends it: the lifetime as a string of seconds.
        return web.json_response({"access_token": token, "expires_in": "14399", "token_type": "BearerToken"})

    async def fhir_base(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization", "").removeprefix("Bearer ") not in self.tokens:
            return web.json_response({"resourceType": "OperationOutcome", "issue": [{"code": "login"}]}, status=401)
        bundle = Bundle.model_validate_json(await request.text())  # a server-side FHIR validation
        if bundle.type != "transaction":
            return web.json_response({"resourceType": "OperationOutcome"}, status=400)
        self.bundles.append(bundle)
        entries = [{"response": {"status": "201 Created", "location": f"{e.request.url}/{uuid.uuid4()}/_history/1"}} for e in bundle.entry]
        return web.json_response({"resourceType": "Bundle", "type": "transaction-response", "entry": entries})


@pytest.fixture
async def satusehat() -> AsyncIterator[tuple[FakeSatusehat, str]]:
    fake = FakeSatusehat()
    app = web.Application()
    app.router.add_post("/oauth2/v1/accesstoken", fake.access_token)
    app.router.add_post("/fhir-r4/v1", fake.fhir_base)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    yield fake, str(server.make_url(""))
    await server.close()


def settings(base: str, **changes: Any) -> SatusehatSettings:
    return SatusehatSettings(**{"auth_url": f"{base}/oauth2/v1", "base_url": f"{base}/fhir-r4/v1", "client_id": CLIENT_ID,
                                "client_secret": CLIENT_SECRET, "organization_id": "10000119", **changes})


async def serving(demo_dsn: str, satusehat: SatusehatSettings) -> Api:
    return await start_api(demo_dsn, dataclasses.replace(app_config(demo_dsn), satusehat=satusehat))


async def new_incident(api: Api) -> str:
    status, created = await api.call("POST", "/api/calls", await api.login("operator"), json=call_body())
    assert status == 201
    return str(created["incident"]["id"])


async def test_bundles_are_sent_with_one_token_and_a_revoked_token_is_renewed(
    demo_dsn: str, satusehat: tuple[FakeSatusehat, str], con: asyncpg.Connection,
) -> None:
    fake, base = satusehat
    api = await serving(demo_dsn, settings(base))
    try:
        admin = await api.login("admin")
        incident_id = await new_incident(api)
        for _ in range(2):
            status, body = await api.call("POST", f"/api/incidents/{incident_id}/fhir/send", admin)
            assert status == 200, body
            assert body["response"]["type"] == "transaction-response"
        assert fake.token_requests == 1 and len(fake.bundles) == 2
        [encounter] = [e.resource for e in fake.bundles[0].entry if e.resource.get_resource_type() == "Encounter"]
        assert encounter.identifier[0].system == "http://sys-ids.kemkes.go.id/encounter/10000119"
        assert encounter.identifier[0].value == incident_id

        fake.tokens.clear()  # SATUSEHAT revokes the token before its time: one new token, one retry
        status, body = await api.call("POST", f"/api/incidents/{incident_id}/fhir/send", admin)
        assert status == 200, body
        assert fake.token_requests == 2 and len(fake.bundles) == 3
    finally:
        await close_api(api)
    sent = await con.fetch("SELECT detail FROM audit_log WHERE action = 'satusehat.send' AND object = $1", f"incident:{incident_id}")
    assert len(sent) == 3 and all(s["detail"]["ok"] and s["detail"]["created"][0].startswith("Patient/") for s in sent)


async def test_refused_credentials_and_an_unreachable_satusehat_are_a_502_naming_it(
    demo_dsn: str, satusehat: tuple[FakeSatusehat, str], con: asyncpg.Connection,
) -> None:
    fake, base = satusehat
    api = await serving(demo_dsn, settings(base, client_secret="wrong-secret"))
    try:
        incident_id = await new_incident(api)
        status, body = await api.call("POST", f"/api/incidents/{incident_id}/fhir/send", await api.login("admin"))
    finally:
        await close_api(api)
    assert status == 502 and body["error"]["field"] == "satusehat.client_id"
    assert not fake.bundles

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    api = await serving(demo_dsn, settings(closed))
    try:
        status, body = await api.call("POST", f"/api/incidents/{incident_id}/fhir/send", await api.login("admin"))
    finally:
        await close_api(api)
    assert status == 502 and body["error"]["field"] == "satusehat"
    failed = await con.fetch("SELECT detail FROM audit_log WHERE action = 'satusehat.send' AND object = $1", f"incident:{incident_id}")
    assert [f["detail"]["ok"] for f in failed] == [False, False]


async def test_without_configuration_nothing_is_sent_and_only_an_admin_may_send(api: Api) -> None:
    incident_id = await new_incident(api)
    status, body = await api.call("POST", f"/api/incidents/{incident_id}/fhir/send", await api.login("admin"))
    assert status == 409 and body["error"]["code"] == "not_configured" and body["error"]["field"] == "satusehat"
    status, _ = await api.call("POST", f"/api/incidents/{incident_id}/fhir/send", await api.login("operator"))
    assert status == 403
