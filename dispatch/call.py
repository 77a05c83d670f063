"""An emergency call as taken by the operator, and the caller's number.

The server records a call before anything else happens, so only the number
and the time are required; location, address and call type are filled in
as the operator learns them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from dispatch._checks import check_aware, check_text
from dispatch.errors import InvalidInput
from dispatch.geo import Point, point_from_dict
from dispatch.priority import Priority, parse_priority
from dispatch.triage import TriageTable

__all__ = ["Call", "call_from_dict", "normalize_phone", "resolve_priority"]

_PHONE = re.compile(r"\+?[0-9]{3,20}")
_SEPARATORS = re.compile(r"[\s\-.()/]")
_CALL_TYPE = re.compile(r"[a-z][a-z0-9_]{0,39}")

_MAX_NAME = 200
_MAX_ADDRESS = 500
_MAX_AREA = 100
_MAX_NOTES = 4000


def normalize_phone(value: object, field: str = "phone") -> str:
    """Canonical caller number: digits with an optional leading ``+``.

    Separators (spaces, dashes, dots, brackets) are dropped and ``+62`` is
    written as a national ``0``, so ``+62 812-3456-7890`` and ``081234567890``
    match when looking for repeat callers. Short codes (119, 112) and
    landlines (021...) are valid. The number never appears in the error
    message: messages end up in logs.
    """
    if not isinstance(value, str):
        raise InvalidInput(field, f"must be a string, got {type(value).__name__}")
    text = _SEPARATORS.sub("", value)
    if text.startswith("+62"):
        text = "0" + text[3:]
    if not _PHONE.fullmatch(text):
        raise InvalidInput(field, "must be 3 to 20 digits, optionally starting with +")
    return text


@dataclass(frozen=True, slots=True)
class Call:
    """What the caller told the operator. ``phone`` is stored normalised."""

    phone: str
    received_at: datetime
    caller_name: str | None = None
    location: Point | None = None
    address: str = ""
    kelurahan: str = ""
    kecamatan: str = ""
    call_type: str | None = None  # a triage table code
    priority: Priority | None = None  # the operator's override of the call type's default
    notes: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "phone", normalize_phone(self.phone))
        check_aware(self.received_at, "received_at")
        if self.caller_name is not None:
            check_text(self.caller_name, "caller_name", max_len=_MAX_NAME, allow_empty=False)
        if self.location is not None and not isinstance(self.location, Point):
            raise InvalidInput("location", "must be a Point")
        check_text(self.address, "address", max_len=_MAX_ADDRESS)
        check_text(self.kelurahan, "kelurahan", max_len=_MAX_AREA)
        check_text(self.kecamatan, "kecamatan", max_len=_MAX_AREA)
        if self.call_type is not None and (
            not isinstance(self.call_type, str) or not _CALL_TYPE.fullmatch(self.call_type)
        ):
            raise InvalidInput("call_type", "must be a call type code")
        if self.priority is not None and not isinstance(self.priority, Priority):
            raise InvalidInput("priority", "must be a Priority")
        check_text(self.notes, "notes", max_len=_MAX_NOTES)


_CALL_KEYS = frozenset(
    {
        "phone",
        "caller_name",
        "location",
        "address",
        "kelurahan",
        "kecamatan",
        "call_type",
        "priority",
        "notes",
    }
)


def call_from_dict(
    data: object, *, received_at: datetime, table: TriageTable | None = None
) -> Call:
    """Parse an intake form (decoded JSON) into a Call.

    ``received_at`` is the server's clock, never the client's. With a
    ``table`` the call type must be one of its codes. Unknown keys are
    rejected so a misspelt field is not silently dropped; the server strips
    its own keys (such as the idempotency key) first.
    """
    if not isinstance(data, Mapping):
        raise InvalidInput("call", "must be an object")
    unknown = sorted(str(key) for key in data if key not in _CALL_KEYS)
    if unknown:
        raise InvalidInput(unknown[0], "unknown field")
    if "phone" not in data:
        raise InvalidInput("phone", "is required")

    def text(key: str, max_len: int) -> str:
        value = data.get(key)
        if value is None:
            return ""
        return check_text(value, key, max_len=max_len).strip()

    name = data.get("caller_name")
    if name is not None:
        name = check_text(name, "caller_name", max_len=_MAX_NAME).strip() or None
    location = data.get("location")
    call_type = data.get("call_type")
    if call_type is not None:
        if not isinstance(call_type, str):
            raise InvalidInput("call_type", "must be a string")
        if table is not None:
            table.get(call_type, "call_type")
    priority = data.get("priority")
    return Call(
        phone=normalize_phone(data["phone"]),
        received_at=received_at,
        caller_name=name,
        location=None if location is None else point_from_dict(location, "location"),
        address=text("address", _MAX_ADDRESS),
        kelurahan=text("kelurahan", _MAX_AREA),
        kecamatan=text("kecamatan", _MAX_AREA),
        call_type=call_type,
        priority=None if priority is None else parse_priority(priority),
        notes=text("notes", _MAX_NOTES),
    )


def resolve_priority(
    call: Call, table: TriageTable, default: Priority = Priority.MERAH
) -> Priority:
    """The operator's override, else the call type's default, else ``default``.

    An untriaged call defaults to merah: until the operator knows better,
    err on the side of the patient.
    """
    if call.priority is not None:
        return call.priority
    if call.call_type is not None:
        return table.get(call.call_type, "call_type").priority
    return default
