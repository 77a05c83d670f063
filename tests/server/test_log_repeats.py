"""Repeated warnings and errors are written once, then as one line with a count."""

from __future__ import annotations

import io
import logging

from server.logs import TEXT_FORMAT, RedactingFilter, RepeatCollapser


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def collapsing_logger(name: str, clock: Clock, window_s: float = 60.0) -> tuple[logging.Logger, io.StringIO, RepeatCollapser]:
    stream = io.StringIO()
    target = logging.StreamHandler(stream)
    target.addFilter(RedactingFilter())
    target.setFormatter(logging.Formatter(TEXT_FORMAT))
    handler = RepeatCollapser(target, window_s, clock)
    logger = logging.getLogger(name)
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, stream, handler


def fail(logger: logging.Logger, path: str, error: type[Exception] = ConnectionResetError) -> None:
    try:
        raise error("Connection lost")
    except Exception:
        logger.exception("unhandled error in POST %s", path)


def test_the_same_exception_is_written_once_then_counted_when_its_window_ends() -> None:
    clock = Clock()
    logger, stream, handler = collapsing_logger("tests.repeats.same", clock)
    try:
        for _ in range(500):
            fail(logger, "/api/auth/login")
            clock.now += 0.01
        assert stream.getvalue().count("Traceback") == 1
        assert "repeated" not in stream.getvalue()
        clock.now += 60
        logger.info("an unrelated line ends the window")
    finally:
        handler.close()
    lines = stream.getvalue().splitlines()
    assert stream.getvalue().count("Traceback") == 1
    counted = [line for line in lines if "repeated" in line]
    assert len(counted) == 1
    assert "unhandled error in POST /api/auth/login [repeated 499 more times in 60 s]" in counted[0]
    assert " ERROR tests.repeats.same " in counted[0]


def test_a_different_exception_type_or_template_is_its_own_line_and_info_is_never_collapsed() -> None:
    clock = Clock()
    logger, stream, handler = collapsing_logger("tests.repeats.kinds", clock)
    try:
        fail(logger, "/a")
        fail(logger, "/a", TimeoutError)
        logger.warning("room %s moved", "c1")
        logger.warning("room %s moved", "c2")  # same template: a repeat
        for _ in range(3):
            logger.info("dispatch %s acknowledged", "u1")
    finally:
        handler.close()  # writes what is pending, window over or not
    text = stream.getvalue()
    assert text.count("Traceback") == 2 and "TimeoutError" in text
    assert "room c1 moved" in text and "room c2 moved [repeated 1 more time in 60 s]" in text
    assert text.count("dispatch u1 acknowledged") == 3


def test_a_new_window_writes_the_record_in_full_again_and_counts_are_redacted() -> None:
    clock = Clock()
    logger, stream, handler = collapsing_logger("tests.repeats.windows", clock, window_s=10)
    try:
        logger.warning("call from %s refused", "081234567890")
        logger.warning("call from %s refused", "081234567891")
        clock.now += 11
        logger.warning("call from %s refused", "081234567892")
    finally:
        handler.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3
    assert lines[1].endswith("call from [redacted] refused [repeated 1 more time in 10 s]")
    assert "8123456789" not in stream.getvalue()
