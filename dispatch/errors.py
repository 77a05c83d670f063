"""The one exception tree of the dispatch domain.

All of them say whose fault the problem is, so the server can map them to a
response in one place::

    DispatchError                 base: catch this to catch everything below
    ├── InvalidInput              the caller's data is wrong (names the field)
    ├── IllegalTransition         a lifecycle move the table does not allow
    └── UnknownUnit               the unit index holds no unit with that id

The server turns InvalidInput into a 4xx reply naming ``field``,
IllegalTransition into a 409, UnknownUnit into a 404.
"""

from __future__ import annotations

__all__ = ["DispatchError", "IllegalTransition", "InvalidInput", "UnknownUnit"]


class DispatchError(Exception):
    """Base class of every error raised by the dispatch package."""


class InvalidInput(DispatchError):
    """A value failed validation; ``field`` names the offending field.

    Nested values use dotted paths (``location.lat``,
    ``call_types.chest_pain.priority``) so the client can point at the
    exact input.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message

    def within(self, prefix: str) -> InvalidInput:
        """The same error, its field nested under ``prefix``."""
        return InvalidInput(f"{prefix}.{self.field}", self.message)


class IllegalTransition(DispatchError):
    """A lifecycle (unit status, incident state) was asked for a move it forbids."""

    def __init__(
        self,
        lifecycle: str,
        current: str,
        target: str,
        allowed: tuple[str, ...],
        detail: str = "",
    ) -> None:
        choices = ", ".join(allowed) if allowed else "none"
        text = f"{lifecycle}: cannot go from {current!r} to {target!r} (allowed: {choices})"
        if detail:
            text = f"{text}; {detail}"
        super().__init__(text)
        self.lifecycle = lifecycle
        self.current = current
        self.target = target
        self.allowed = allowed


class UnknownUnit(DispatchError, KeyError):
    """The unit index has no unit with this id."""

    def __init__(self, unit_id: str) -> None:
        super().__init__(unit_id)
        self.unit_id = unit_id

    def __str__(self) -> str:
        # KeyError would repr() the argument; say what is missing instead.
        return f"unknown unit {self.unit_id!r}"
