"""Small validators shared by the value classes; each raises InvalidInput naming the field."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime, timedelta

from dispatch.errors import InvalidInput


def check_real(value: object, field: str) -> float:
    """A finite int or float (bool rejected: ``True`` is not a coordinate)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInput(field, f"must be a number, got {type(value).__name__}")
    result = float(value)
    if not math.isfinite(result):
        raise InvalidInput(field, "must be finite")
    return result


def check_positive(value: object, field: str) -> float:
    result = check_real(value, field)
    if result <= 0:
        raise InvalidInput(field, "must be greater than 0")
    return result


def check_int(value: object, field: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(field, f"must be an integer, got {type(value).__name__}")
    if value < minimum:
        raise InvalidInput(field, f"must be at least {minimum}")
    return value


def check_text(value: object, field: str, *, max_len: int, allow_empty: bool = True) -> str:
    """A string of at most ``max_len`` characters without control characters.

    Newlines and tabs are allowed (notes are multi-line); other control
    characters are not, because they break logs and exports.
    """
    if not isinstance(value, str):
        raise InvalidInput(field, f"must be a string, got {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise InvalidInput(field, "must not be empty")
    if len(value) > max_len:
        raise InvalidInput(field, f"must be at most {max_len} characters")
    if any(ord(c) < 32 and c not in "\n\r\t" or ord(c) == 127 for c in value):
        raise InvalidInput(field, "must not contain control characters")
    return value


def check_aware(value: object, field: str) -> datetime:
    """A timezone-aware datetime: naive times are ambiguous across WIB/UTC."""
    if not isinstance(value, datetime):
        raise InvalidInput(field, f"must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(field, "must be timezone-aware")
    return value


def check_duration(value: object, field: str) -> timedelta:
    if not isinstance(value, timedelta):
        raise InvalidInput(field, f"must be a timedelta, got {type(value).__name__}")
    if value <= timedelta(0):
        raise InvalidInput(field, "must be longer than zero")
    return value


def check_words(values: object, field: str, vocabulary: frozenset[str], noun: str) -> frozenset[str]:
    """A list of words from ``vocabulary``: a typo ("als " or "CT") fails loudly rather than silently matching nothing."""
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise InvalidInput(field, f"must be a list of {noun} names")
    result: set[str] = set()
    for index, value in enumerate(values):
        if not isinstance(value, str):
            raise InvalidInput(f"{field}[{index}]", "must be a string")
        if value not in vocabulary:
            raise InvalidInput(f"{field}[{index}]", f"unknown {noun} {value!r}; known: {', '.join(sorted(vocabulary))}")
        result.add(value)
    return frozenset(result)
