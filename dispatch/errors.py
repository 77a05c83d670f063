"""The one exception tree of the dispatch domain.

All of them say whose fault the problem is, so the server can map them to a
response in one place::

    DispatchError                 base: catch this to catch everything below
    ├── InvalidInput              the caller's data is wrong (names the field)
    ├── IllegalTransition         a lifecycle move the table does not allow
    ├── UnknownUnit               the unit index holds no unit with that id
    └── Refused                   an assignment decision that must not go ahead
        ├── IncidentClosed          nothing more is sent to, or withdrawn from, a closed incident
        ├── StaleVersion            the operator chose from an outdated view of who serves it
        ├── AlreadyServed           a second unit for a role already served, not asked for
        ├── MissingCapabilities     the unit cannot serve the call, and no reason overrides that
        ├── UnitNotAvailable        the unit is not available to be sent
        ├── NotWithdrawable         the unit is past the point where the operator may withdraw it
        └── UnitsStillAssigned      the incident cannot close while units serve it

The server turns InvalidInput into a 4xx reply naming ``field``,
IllegalTransition into a 409, UnknownUnit into a 404, and each refusal into
its 409 (or 422 for MissingCapabilities).
"""

from __future__ import annotations

__all__ = [
    "AlreadyServed",
    "DispatchError",
    "IllegalTransition",
    "IncidentClosed",
    "InvalidInput",
    "MissingCapabilities",
    "NotWithdrawable",
    "Refused",
    "StaleVersion",
    "UnitNotAvailable",
    "UnitsStillAssigned",
    "UnknownUnit",
]


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


class Refused(DispatchError):
    """An assignment decision (``dispatch.assignment``) that must not go ahead; it changes nothing."""


class IncidentClosed(Refused):
    def __init__(self) -> None:
        super().__init__("the incident is closed")


class StaleVersion(Refused):
    """The operator's view of who serves the incident (its assignment version) is outdated."""

    def __init__(self, expected: int, current: int) -> None:
        super().__init__("the incident's units changed since this list was shown; look again and choose")
        self.expected = expected
        self.current = current


class AlreadyServed(Refused):
    """A unit already serves the incident in the role asked for; another is sent only as additional."""

    def __init__(self, serving: str) -> None:
        super().__init__(f"unit {serving} is already on this incident; send another for that role only as additional")
        self.serving = serving


class MissingCapabilities(Refused):
    """The unit lacks what the call needs in either tier; it is sent only with a reason."""

    def __init__(self, unit_id: str, missing: tuple[str, ...]) -> None:
        super().__init__(f"unit {unit_id} lacks {', '.join(missing)} for this incident; send it with an override_reason")
        self.unit_id = unit_id
        self.missing = missing


class UnitNotAvailable(Refused):
    def __init__(self, unit_id: str, status: str) -> None:
        super().__init__(f"unit {unit_id} is no longer available (it is {status})")
        self.unit_id = unit_id
        self.status = status


class NotWithdrawable(Refused):
    def __init__(self, unit_id: str, status: str) -> None:
        super().__init__(f"a unit that is {status} cannot be withdrawn; the crew clears it")
        self.unit_id = unit_id
        self.status = status


class UnitsStillAssigned(Refused):
    def __init__(self) -> None:
        super().__init__("units are still assigned; cancel or clear them first")
