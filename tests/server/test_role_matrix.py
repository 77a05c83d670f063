"""Every route × every role: allowed, 403, or 401 without a token.

EXPECTED is the access policy written out by hand; a route missing from it fails
the test, so a new route cannot slip in without a decision about who may use it.
"""

from __future__ import annotations

import re

import pytest

from server.app import create_app
from server.keys import ENDPOINTS
from server.roles import Role
from tests.conftest import Api, app_config

PUBLIC = "public"
EVERYONE = {r.value for r in Role}
EXPECTED: dict[tuple[str, str], set[str] | str] = {
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/api/openapi.json"): PUBLIC,
    ("POST", "/api/auth/login"): PUBLIC,
    ("POST", "/api/auth/logout"): EVERYONE,
    ("GET", "/api/me"): EVERYONE,
    ("GET", "/api/region"): EVERYONE,
    ("GET", "/api/audit"): {"admin"},
    ("GET", "/ws/events"): EVERYONE,
    ("POST", "/api/calls"): {"operator"},
    ("PATCH", "/api/incidents/{id}"): {"operator"},
    ("GET", "/api/incidents/{id}/recommendations"): {"operator"},
    ("POST", "/api/incidents/{id}/dispatch"): {"operator"},
    ("POST", "/api/incidents/{id}/assignments/{assignment_id}/cancel"): {"operator"},
    ("POST", "/api/incidents/{id}/close"): {"operator"},
    ("POST", "/api/incidents/{id}/link"): {"operator"},
    ("GET", "/api/incidents/{id}/hospitals"): {"operator"},
    ("POST", "/api/incidents/{id}/destination"): {"operator"},
    ("GET", "/api/hospitals/availability"): {"operator", "admin", "hospital", "specialist"},
    # A hospital account its own hospital only (403 for another: tests/server/test_hospital_board.py).
    ("PATCH", "/api/hospitals/{code}/availability"): {"hospital", "admin"},
    ("GET", "/api/notices"): {"hospital", "operator", "field_team"},
    ("POST", "/api/notices/{id}/acknowledge"): {"hospital"},
    ("POST", "/api/notices/{id}/decline"): {"hospital"},
    ("POST", "/api/notices/{id}/handover"): {"hospital", "field_team"},
    ("POST", "/api/incidents/{id}/vitals"): {"operator", "field_team"},
    ("PUT", "/api/incidents/{id}/patient"): {"operator", "field_team"},
    ("GET", "/api/incidents"): {"operator", "admin"},
    ("GET", "/api/incidents/{id}"): {"operator", "admin"},
    ("GET", "/api/incidents/{id}/timeline"): {"operator", "admin"},
    ("GET", "/api/incidents/{id}/eido"): {"operator", "admin"},
    ("GET", "/api/incidents/{id}/fhir"): {"operator", "admin"},
    ("POST", "/api/incidents/{id}/fhir/send"): {"admin"},
    ("GET", "/api/consults/{id}/fhir"): {"puskesmas", "specialist", "admin"},
    ("POST", "/api/consults/{id}/fhir/send"): {"admin"},
    ("GET", "/api/metrics"): {"operator", "admin"},
    ("GET", "/api/units"): {"operator", "admin"},
    ("POST", "/api/units"): {"admin"},
    ("PATCH", "/api/units/{id}"): {"admin"},
    ("POST", "/api/units/{id}/duty"): {"admin"},
    ("POST", "/api/units/{id}/status"): {"operator"},
    ("GET", "/api/triage"): EVERYONE,
    ("PUT", "/api/triage/{code}"): {"admin"},
    ("GET", "/ws/unit"): {"field_team"},
    ("GET", "/ws/operator"): {"operator", "admin"},
    ("POST", "/api/consults"): {"puskesmas"},
    ("GET", "/api/consults"): {"puskesmas", "specialist", "admin"},
    ("GET", "/api/consults/{id}"): {"puskesmas", "specialist", "admin"},
    ("POST", "/api/consults/{id}/cancel"): {"puskesmas"},
    ("PUT", "/api/oncall"): {"specialist"},
    ("GET", "/api/oncall"): {"specialist", "admin"},
    ("POST", "/api/consults/{id}/accept"): {"specialist"},
    ("POST", "/api/consults/{id}/decline"): {"specialist"},
    ("POST", "/api/consults/{id}/complete"): {"specialist"},
    ("POST", "/api/consults/{id}/attachments"): {"puskesmas"},
    ("GET", "/api/consults/{id}/attachments/{attachment_id}"): {"puskesmas", "specialist", "admin", "hospital"},
    ("POST", "/api/consults/{id}/join"): {"puskesmas", "specialist"},
    ("GET", "/api/ice-servers"): {"puskesmas", "specialist"},
    ("GET", "/api/consults/{id}/chat"): {"puskesmas", "specialist", "admin"},
    ("GET", "/api/consults/{id}/timeline"): {"puskesmas", "specialist", "admin"},
    ("GET", "/api/consults/{id}/referral-options"): {"specialist"},
    ("GET", "/api/referrals"): {"hospital"},
    ("POST", "/api/referrals/{id}/accept"): {"hospital"},
    ("POST", "/api/referrals/{id}/decline"): {"hospital"},
    # Authenticated by the join token in its first message, not by a session.
    ("GET", "/ws/consults/{id}"): PUBLIC,
    ("GET", "/api/web-config"): PUBLIC,
    # Not by session: by client address (metrics.allow_from) or the metrics token (tests/server/test_metrics_endpoint.py).
    ("GET", "/metrics"): PUBLIC,
    ("GET", "/vendor/leaflet/{path:.*}"): PUBLIC,
    ("GET", "/{path:(?!api/|ws/).*}"): PUBLIC,
}
DEMO_USER = {"operator": "operator", "field_team": "field", "puskesmas": "puskesmas", "specialist": "specialist", "hospital": "hospital",
             "admin": "admin"}


def concrete(path: str) -> str:
    """A request path for a route pattern: each parameter filled with a harmless value."""
    path = path.replace("{path:(?!api/|ws/).*}", "index.html").replace("/vendor/leaflet/{path:.*}", "/vendor/leaflet/leaflet.css")
    return re.sub(r"\{[^}]+\}", "1", path)


def declared() -> list[tuple[str, str]]:
    app = create_app(app_config("postgresql://unused/x"), "postgresql://unused/x")
    return [(e.method, e.path) for e in app[ENDPOINTS]]


def test_every_route_has_an_expected_policy() -> None:
    assert sorted(declared()) == sorted(EXPECTED)


def test_declared_roles_match_the_policy() -> None:
    app = create_app(app_config("postgresql://unused/x"), "postgresql://unused/x")
    for e in app[ENDPOINTS]:
        expected = EXPECTED[(e.method, e.path)]
        assert (PUBLIC if e.public else {r.value for r in e.roles}) == expected, e.path


@pytest.mark.parametrize("method,path", sorted(EXPECTED))
async def test_route_access(api: Api, method: str, path: str) -> None:
    policy = EXPECTED[(method, path)]
    url = concrete(path)
    tokens = {role: await api.login(user) for role, user in DEMO_USER.items()}
    # Logout revokes the token it is called with, so it goes last for each role.
    status, _ = await api.call(method, url)
    if policy == PUBLIC:
        assert status not in (401, 403), (method, path, "anonymous", status)
    else:
        assert status == 401, (method, path, "anonymous", status)
    for role, token in tokens.items():
        status, _ = await api.call(method, url, token)
        allowed = policy == PUBLIC or role in policy
        if allowed:
            assert status not in (401, 403), (method, path, role, status)
        else:
            assert status == 403, (method, path, role, status)
