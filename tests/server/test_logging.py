"""Structured logs: JSON lines with a request id, phone numbers masked, passwords never written."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
import logging
import os
import re
import signal
from pathlib import Path

import aiohttp
import pytest

from server.logs import TEXT_FORMAT, JsonFormatter, RedactingFilter, redact, request_id
from tests.conftest import PSC119, REPO

SERVING = re.compile(r"^psc119 serving on (http://127\.0\.0\.1:\d+)$")
JSON_KEYS = {"time", "level", "logger", "request_id", "message"}


@pytest.mark.parametrize(
    "phone",
    ["+6281234567890", "0812-3456-7890", "081234567890", "+62 812 3456 7890", "0812 3456 7890", "021-7470-1234"],
)
def test_redact_masks_phone_numbers(phone: str) -> None:
    text = redact(f"caller {phone} reports a fall")
    assert text == "caller [redacted] reports a fall"
    assert not re.search(r"\d{4}", text)


@pytest.mark.parametrize(
    "text",
    [
        "dial 119 for an ambulance",
        "unit NS-01 dispatched, AMB-PKM-12 on scene",
        "incident 4821 priority P1 at -6.2881, 106.7105",
        "listening on 127.0.0.1:8119",
        "3 failures in 900 s",
    ],
)
def test_redact_keeps_short_numbers_callsigns_and_coordinates(text: str) -> None:
    assert redact(text) == text


def test_json_formatter_and_filter_give_one_redacted_object_per_line() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("tests.logging.json")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    token = request_id.set("abcd1234abcd1234")
    try:
        logger.warning("call from %s about %s", "0812-3456-7890", "NS-01")
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("handler failed")
    finally:
        request_id.reset(token)
        logger.removeHandler(handler)
        logger.propagate = True
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert JSON_KEYS <= set(first)
    assert first["message"] == "call from [redacted] about NS-01"
    assert (first["level"], first["logger"], first["request_id"]) == ("WARNING", "tests.logging.json", "abcd1234abcd1234")
    assert dt.datetime.fromisoformat(first["time"]).tzinfo is not None
    assert second["exception"].endswith("ValueError (message withheld)")


@pytest.mark.parametrize("formatter", [JsonFormatter(), logging.Formatter(TEXT_FORMAT)], ids=["json", "text"])
def test_phone_numbers_in_a_logged_exception_are_masked_too(formatter: logging.Formatter) -> None:
    # A database error's detail quotes the offending row, e.g. a caller's number in a unique violation.
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(formatter)
    logger = logging.getLogger("tests.logging.exception")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        try:
            raise ValueError("Key (caller_phone)=(+6281234567890) already exists")
        except ValueError:
            logger.exception("could not record the call")
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    output = stream.getvalue()
    assert "ValueError (message withheld)" in output
    assert "81234567890" not in output


async def test_serve_json_logs_carry_the_request_id_and_never_the_password(demo_dsn: str, tmp_path: Path) -> None:
    password = "Kata-Sandi-Rahasia-7731"
    env = {
        **os.environ,
        "PSC119_DATABASE_URL": demo_dsn,
        "PSC119_AUTH_ARGON2_TIME_COST": "1",
        "PSC119_AUTH_ARGON2_MEMORY_KIB": "8192",
        "PSC119_SERVER_LOG_REPEAT_WINDOW_S": "0",  # each failed login's own line, not one line and a count
    }
    stderr_path = tmp_path / "stderr.log"
    with open(stderr_path, "wb") as stderr:
        proc = await asyncio.create_subprocess_exec(
            *PSC119, "--log-format", "json", "serve", "--port", "0", cwd=REPO, env=env,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=stderr,
        )
        try:
            assert proc.stdout is not None
            url = None
            while url is None:
                raw = await asyncio.wait_for(proc.stdout.readline(), 30)
                assert raw, f"serve exited early: {stderr_path.read_text()}"
                match = SERVING.match(raw.decode().strip())
                url = match.group(1) if match else None
            async with aiohttp.ClientSession() as session:
                async with session.post(f"{url}/api/auth/login", json={"username": "operator", "password": password}) as r:
                    assert r.status == 401
                    rid = r.headers["X-Request-Id"]
                async with session.post(f"{url}/api/auth/login", json={"username": "nobody", "password": password}) as r:
                    assert r.status == 401
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), 10)
            rest = await asyncio.wait_for(proc.stdout.read(), 5)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    assert proc.returncode == 0
    lines = [line for line in stderr_path.read_text().splitlines() if line.strip()]
    assert lines, "serve logged nothing"
    records = []
    for line in lines:
        record = json.loads(line)  # every line is one JSON object
        assert JSON_KEYS <= set(record), line
        records.append(record)
    failed = [r for r in records if "failed login" in r["message"]]
    assert len(failed) == 2
    assert failed[0]["level"] == "WARNING"
    assert failed[0]["request_id"] == rid
    assert failed[1]["request_id"] not in (rid, "-")
    # Lines outside a request carry the placeholder id.
    assert any(r["request_id"] == "-" and r["message"] == "shutting down" for r in records)
    assert password not in stderr_path.read_text()
    assert password not in rest.decode()
