"""Property-based fuzzing of the live API from its own OpenAPI document, once per role.

A real ``psc119`` process on the demo region; schemathesis generates requests for
every operation the role may use (and the public ones), both fitting the schema and
not (negative data), and checks each answer:
no server error, a declared status, a body matching the declared schema and
content type. Seeded and derandomized, so a failure reproduces.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from server import demo_region
from tests.conftest import Api
from tests.server.process_support import Served, cli_env

CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance, content_type_conformance, negative_data_rejection]
EXAMPLES = 10
USERS = {"operator": "operator", "field_team": "field", "puskesmas": "puskesmas", "specialist": "specialist", "hospital": "hospital",
         "admin": "admin"}
# Logging out revokes the token the rest of the run uses; it is covered by tests/server/test_auth.py.
EXCLUDED = {("POST", "/api/auth/logout")}

def _titles(exc: BaseException) -> str:
    """Each failed check's first line (schemathesis groups them), not the whole report."""
    parts = exc.exceptions if isinstance(exc, BaseExceptionGroup) else (exc,)
    return "; ".join(f"{type(p).__name__}: {str(p).splitlines()[0] if str(p) else ''}" for p in parts)


def _fuzz(base: str, role: str) -> tuple[int, list[str]]:
    """How many requests were sent, and every non-conformance found for the role's operations."""
    session = requests.Session()
    headers: dict[str, str] = {}
    if role != "anonymous":
        login = session.post(f"{base}/api/auth/login", json={"username": USERS[role], "password": demo_region.DEMO_PASSWORD})
        assert login.status_code == 200, login.text
        headers["Authorization"] = f"Bearer {login.json()['token']}"
    schema = schemathesis.openapi.from_url(f"{base}/api/openapi.json")
    problems: list[str] = []
    sent = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        roles = operation.definition.raw.get("x-roles", [])
        if (operation.method.upper(), operation.path) in EXCLUDED or not ({"public", role} & set(roles)):
            continue

        @hypothesis.given(case=st.one_of(*(operation.as_strategy(mode) for mode in GenerationMode)))
        @hypothesis.settings(
            max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
            suppress_health_check=list(HealthCheck), phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
        )
        def check(case: Any) -> None:
            nonlocal sent
            sent += 1
            # A query parameter whose value is an empty list is not sent at all: such a request is not negative.
            unsent = any(value == [] for value in (case.query or {}).values())
            try:
                case.call_and_validate(base_url=base, session=session, headers=headers,
                                       checks=[c for c in CHECKS if not (unsent and c is negative_data_rejection)])
            except (Exception, BaseExceptionGroup) as exc:  # every failure is collected, so one run reports them all
                problems.append(f"{case.method} {case.formatted_path} -> {_titles(exc)}")

        check()
    return sent, problems

@pytest.mark.timeout(300)
@pytest.mark.parametrize("role", [*USERS, "anonymous"])
async def test_fuzzing_every_operation_finds_no_server_error_and_no_nonconformance(demo_dsn: str, tmp_path: Path, role: str) -> None:
    served = await Served.start(["serve", "--port", "0"], cli_env(demo_dsn), tmp_path / "serve.log")
    try:
        sent, problems = await asyncio.to_thread(_fuzz, served.url, role)
    finally:
        await served.terminate()
    assert problems == [], "\n".join(problems)
    assert sent >= 3 * EXAMPLES, sent  # the public operations alone
    assert "Traceback" not in (tmp_path / "serve.log").read_text()


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return ([node["$ref"]] if isinstance(node.get("$ref"), str) else []) + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


async def test_the_document_resolves_every_ref_and_declares_each_success_with_a_schema(api: Api) -> None:
    status, document = await api.call("GET", "/api/openapi.json")
    assert status == 200
    schemas = document["components"]["schemas"]
    broken = [r for r in _refs(document) if not (r.startswith("#/components/schemas/") and r.rsplit("/", 1)[1] in schemas)]
    assert broken == []
    for path, operations in document["paths"].items():
        for method, op in operations.items():
            success = {code: r for code, r in op["responses"].items() if code.startswith("2")}
            if path.startswith("/ws/"):
                assert "101" in op["responses"], (method, path)
                continue
            assert success, (method, path)
            assert all(next(iter(r["content"].values()))["schema"] for r in success.values()), (method, path)
    assert set(document["paths"]["/api/calls"]["post"]["responses"]) == {"200", "201", "default"}  # 201 new, 200 a retry
    assert "201" in document["paths"]["/api/incidents/{id}/dispatch"]["post"]["responses"]
    assert "201" in document["paths"]["/api/units"]["post"]["responses"]
