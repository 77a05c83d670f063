"""The one input layer: what every body, socket frame, query and path parameter passes before a handler.

- JSON is decoded by :func:`loads`: UTF-8 only, nesting at most ``MAX_DEPTH``
  levels (checked on the text *before* decoding, since the standard decoder
  recurses and a deep document raises ``RecursionError`` inside it), no
  ``NaN``/``Infinity`` or numbers too large to be finite, no duplicate keys.
- Every string in the decoded value, every query and path parameter and the
  ``Authorization`` header (:func:`guard`), is refused if it holds a NUL (PostgreSQL cannot store one) or
  a lone surrogate (not Unicode: nothing can encode it); every integer must lie
  within ±2^53 (I-JSON: what a browser reads exactly, and what a bigint column holds).

Refusals are `BadRequest` (400) for a malformed document and `InvalidField`
(422) naming the field path (``patient.chief_complaint``, ``crew.0``). The
messages never quote the value: it may be patient data.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from typing import TYPE_CHECKING, Annotated, Any

import pydantic
from aiohttp import web

from server.errors import BadRequest, InvalidField

if TYPE_CHECKING:  # routing decodes bodies with this module
    from server.routing import Handler

MAX_DEPTH = 32
MAX_INTEGER = 2**53
_STRINGS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = re.compile(r"[^\[\]{}]+")
_ONE_KIND = str.maketrans("{}", "[]")
_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}:]')
# Naming the field of a refused deep document reads tokens one by one: only this many.
_NAMING_TOKENS = 4096
_BAD_TEXT = re.compile(r"[\x00\ud800-\udfff]")


def _depth_within(text: str, limit: int) -> bool:
    """Whether the brackets of a JSON text close within ``limit`` levels (False also when they never balance).

    Strings are dropped first so brackets inside them do not count, and both kinds of
    bracket are read as one (a mismatch is invalid JSON anyway, refused by the decoder).
    Each pass removes the innermost pairs with ``str.replace``: no recursion, and no
    pass at all for a plain run of openers.
    """
    brackets = _NOT_BRACKETS.sub("", _STRINGS.sub("", text)).translate(_ONE_KIND)
    if "[" * (limit + 1) in brackets:
        return False
    for _ in range(limit):
        if not brackets:
            return True
        inner = brackets.replace("[]", "")
        if inner == brackets:
            return False
        brackets = inner
    return not brackets


def _deep_field(text: str, limit: int) -> str | None:
    """The top-level key under which nesting first passes ``limit``, if found within the first tokens."""
    depth, key, last = 0, None, ""
    for count, match in enumerate(_TOKENS.finditer(text)):
        token = match.group()
        if count > _NAMING_TOKENS:
            return None
        if token in ("[", "{"):
            depth += 1
            if depth > limit:
                return key
        elif token in ("]", "}"):
            depth -= 1
        elif token == ":" and depth == 1:
            key = _key(last)
        else:
            last = token
    return None


def _key(token: str) -> str | None:
    """A string token as a key to name, or None when it is too long or not a valid JSON string."""
    if len(token) > 200:
        return None
    try:
        return _named(json.loads(token))
    except ValueError:
        return None


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("number too large")
    return value


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate key")
    return result


class _LargeInteger(ValueError):
    """An integer past ±2^53: decoding stops, and the walk below names its field."""


def _bounded_int(digits: str) -> int:
    value = int(digits)
    if not -MAX_INTEGER <= value <= MAX_INTEGER:
        raise _LargeInteger
    return value


# Built once. The integer hook costs a call per number; a regex over the text for long digit runs would cost
# about 12 ns per character of every string as well (a 64 KB SDP: 0.8 ms).
_DECODER = json.JSONDecoder(parse_int=_bounded_int, parse_constant=_no_constants, parse_float=_finite, object_pairs_hook=_no_duplicates)
_UNBOUNDED = json.JSONDecoder(parse_constant=_no_constants, parse_float=_finite, object_pairs_hook=_no_duplicates)


def loads(raw: str | bytes | bytearray, *, what: str = "body", max_bytes: int | None = None) -> Any:
    """Decode a JSON document strictly and check its text; ``what`` names it in errors ("body", "message")."""
    if max_bytes is not None and len(raw) > max_bytes:
        raise BadRequest(f"{what} must be at most {max_bytes} bytes")
    raw_surrogates = False
    if isinstance(raw, str):
        text = raw
        if not text.isascii():  # else its length is its size in UTF-8, checked above
            if max_bytes is not None and len(text.encode("utf-8", "surrogatepass")) > max_bytes:
                raise BadRequest(f"{what} must be at most {max_bytes} bytes")
            raw_surrogates = _has_surrogate(text)
    else:
        try:
            text = bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest(f"{what} is not valid UTF-8") from None
    # Fewer brackets than the limit cannot nest past it (an SDP frame, a small body): no scan needed.
    if text.count("[") + text.count("{") > MAX_DEPTH and not _depth_within(text, MAX_DEPTH):
        raise BadRequest(f"{what} is not valid JSON or nests deeper than {MAX_DEPTH} levels", field=_deep_field(text, MAX_DEPTH))
    # A NUL or a surrogate comes in as a \u escape (a raw NUL is invalid JSON; UTF-8 holds no surrogate), and an
    # integer past 2^53 stops the bounded decoder: without any of these the decoded value needs no walk.
    walk = raw_surrogates or "\\u" in text
    try:
        try:
            value = _DECODER.decode(text)
        except _LargeInteger:
            value, walk = _UNBOUNDED.decode(text), True  # the walk names the large integer's field
    except ValueError:
        raise BadRequest(f"{what} is not valid JSON") from None
    if walk:
        check_values(value)
    return value


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _named(key: str) -> str:
    """A key fit to name in an error: its NULs and surrogates written as escapes."""
    return _BAD_TEXT.sub(lambda m: f"\\u{ord(m.group()):04x}", key)


def _text_fault(value: str) -> str | None:
    # Two scans in C first (the class regex costs ~20 ns a character): most strings hold neither.
    if "\x00" not in value and (value.isascii() or not _has_surrogate(value)):
        return None
    bad = _BAD_TEXT.search(value)
    if bad is None:
        return None
    return "must not contain NUL characters" if bad.group() == "\x00" else "must be valid Unicode (a lone surrogate is not)"


def check_values(value: Any, path: str = "") -> None:
    """Refuse a NUL or a lone surrogate in any string (keys included), or an integer past ±2^53, of a decoded JSON value."""
    if isinstance(value, str):
        fault = _text_fault(value)
        if fault is not None:
            raise InvalidField(fault, field=path or None)
    elif isinstance(value, int) and not -MAX_INTEGER <= value <= MAX_INTEGER:
        raise InvalidField("must be an integer from -2^53 to 2^53", field=path or None)
    elif isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{_named(key)}" if path else _named(key)
            fault = _text_fault(key)
            if fault is not None:
                raise InvalidField(f"the key {fault}", field=child)
            check_values(item, child)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_values(item, f"{path}.{index}" if path else str(index))


# The one header whose value reaches more than a comparison (it is hashed and looked up). Bytes that are
# not UTF-8 arrive as lone surrogates. Other headers are left alone: a stray cookie must not lock a console out.
_CHECKED_HEADERS = ("Authorization",)


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Check every path and query parameter, and the token header, before anything (access control included) reads one."""
    for name, value in request.match_info.items():
        check_values(value, name)
    for name, value in request.query.items():
        check_values({name: value})
    for name in _CHECKED_HEADERS:
        for value in request.headers.getall(name, ()):
            check_values(value, name)
    return await handler(request)


# RFC 3339, what the OpenAPI "date-time" format names: an offset is required, a bare number is not a time.
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})", re.ASCII)


def _rfc3339(value: object) -> object:
    if isinstance(value, str) and not _RFC3339.fullmatch(value):
        raise ValueError("must be an RFC 3339 date-time with an offset, e.g. 2026-01-31T08:00:00+07:00")
    return value


def _representable(value: dt.datetime) -> dt.datetime:
    # Stored and compared in UTC: a time near year 1 or 9999 with an offset falls outside the calendar there.
    try:
        value.astimezone(dt.UTC)
    except OverflowError:
        raise ValueError("is outside the supported range of dates") from None
    return value


Instant = Annotated[dt.datetime, pydantic.BeforeValidator(_rfc3339), pydantic.AfterValidator(_representable)]
