"""Small validators shared by the value objects and the message parser.

Each takes the value to check, the dotted ``field`` path to name in the error,
and the error class to raise (`InvalidValue`, or `InvalidMessage` at the wire).
They check the *type* first, so a ``True`` is never taken for ``1`` and a string
never for a number.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import datetime
from enum import Enum
from typing import TypeVar

from .errors import InvalidValue

E = TypeVar("E", bound=Enum)

_ID_MAX = 128


# Unicode's control characters (category Cc) are exactly U+0000-U+001F and U+007F-U+009F: one regex scan in C.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_BUT_LINES = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _has_control(value: str, *, multiline: bool) -> bool:
    return (_CONTROL_BUT_LINES if multiline else _CONTROL).search(value) is not None


def text(
    value: object,
    field: str,
    *,
    max_len: int,
    required: bool = True,
    multiline: bool = False,
    error: type[InvalidValue] = InvalidValue,
) -> str:
    """A string of at most ``max_len`` characters; not blank when ``required``."""
    if not isinstance(value, str):
        raise error(field, "must be a string")
    if len(value) > max_len:
        raise error(field, f"must be at most {max_len} characters")
    if required and not value.strip():
        raise error(field, "must not be empty")
    if _has_control(value, multiline=multiline):
        raise error(field, "must not contain control characters")
    return value


def optional_text(
    value: object,
    field: str,
    *,
    max_len: int,
    multiline: bool = False,
    error: type[InvalidValue] = InvalidValue,
) -> str | None:
    if value is None:
        return None
    return text(value, field, max_len=max_len, multiline=multiline, error=error)


def identifier(value: object, field: str, *, error: type[InvalidValue] = InvalidValue) -> str:
    """An opaque id: 1..128 characters, no whitespace or control characters."""
    if not isinstance(value, str):
        raise error(field, "must be a string")
    if not value or len(value) > _ID_MAX:
        raise error(field, f"must be 1..{_ID_MAX} characters")
    if any(ch.isspace() for ch in value) or _has_control(value, multiline=False):
        raise error(field, "must not contain whitespace or control characters")
    return value


def integer(
    value: object,
    field: str,
    lo: int,
    hi: int,
    *,
    error: type[InvalidValue] = InvalidValue,
) -> int:
    """An ``int`` (not a ``bool``) in ``lo..hi`` inclusive."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise error(field, "must be an integer")
    if not lo <= value <= hi:
        raise error(field, f"must be in {lo}..{hi}")
    return value


def number(
    value: object,
    field: str,
    lo: float,
    hi: float,
    *,
    error: type[InvalidValue] = InvalidValue,
) -> float:
    """A finite ``int`` or ``float`` (not a ``bool``) in ``lo..hi`` inclusive."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise error(field, "must be a number")
    result = float(value)
    if not math.isfinite(result):
        raise error(field, "must be a finite number")
    if not lo <= result <= hi:
        raise error(field, f"must be in {lo:g}..{hi:g}")
    return result


def boolean(value: object, field: str, *, error: type[InvalidValue] = InvalidValue) -> bool:
    if not isinstance(value, bool):
        raise error(field, "must be true or false")
    return value


def choice(
    enum: type[E],
    value: object,
    field: str,
    *,
    error: type[InvalidValue] = InvalidValue,
) -> E:
    """A member of ``enum`` given as itself or as its string value."""
    if isinstance(value, enum):
        return value
    if isinstance(value, str):
        for member in enum:
            if member.value == value:
                return member
    allowed = ", ".join(str(member.value) for member in enum)
    raise error(field, f"must be one of: {allowed}")


def aware(value: object, field: str, *, error: type[InvalidValue] = InvalidValue) -> datetime:
    """A timezone-aware ``datetime``; naive times are refused, never guessed."""
    if not isinstance(value, datetime):
        raise error(field, "must be a datetime")
    if value.tzinfo is None or value.utcoffset() is None:
        raise error(field, "must be timezone-aware")
    return value


def fields(data: object, path: str, known: tuple[str, ...]) -> Mapping[str, object]:
    """``data`` as an object holding only ``known`` keys; errors name ``path`` or ``path.key``."""
    if not isinstance(data, Mapping):
        raise InvalidValue(path, "must be an object")
    for key in data:
        if key not in known:
            raise InvalidValue(f"{path}.{key}", "unknown field")
    return data
