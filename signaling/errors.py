"""The one exception tree of the consult/signaling domain.

::

    SignalingError                  base; ``code`` and optional ``field``
    ├── IllegalTransition           a lifecycle move the table forbids       (409)
    │   └── WrongState              an action of theirs, not in this state   (409)
    ├── InvalidValue                bad input, names the field               (422)
    │   └── InvalidMessage          a malformed signaling message            (ws error reply)
    ├── NotAMember                  the user is not a member of this room    (403)
    ├── NotAllowed                  the consult is not theirs to act on      (403)
    ├── TokenRejected               join token unknown, mismatched, expired  (401/403)
    ├── WrongRoom                   a message or grant for another consult   (400)
    ├── NotJoined                   sender is not (or no longer) connected   (ws close)
    ├── NotOfferer                  an offer from a non-offerer, aiortc pair (ws error reply)
    ├── RoomClosed                  the consult's room no longer accepts     (410)
    ├── RecordingNotAllowed         not every member consented to recording  (403)
    └── ChatFull                    the consult holds as much chat as it may (ws error reply)

Every error is the *peer's* fault (bad or untimely input); the domain raises no
error for its own bugs other than plain ``TypeError``/``ValueError`` from Python.
``code`` is a stable snake_case string for the wire (`messages.Error.code`) and for
the server's single status/close-code mapping; ``field`` names the offending input
as a dotted path (``"patient.vitals.spo2"``, ``"sdpMLineIndex"``) or is ``None``
when the whole input is at fault.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "ChatFull",
    "IllegalTransition",
    "InvalidMessage",
    "InvalidValue",
    "NotAMember",
    "NotAllowed",
    "NotJoined",
    "NotOfferer",
    "RecordingNotAllowed",
    "RoomClosed",
    "SignalingError",
    "TokenRejected",
    "WrongRoom",
    "WrongState",
]


class SignalingError(Exception):
    """Base of every error raised by the ``signaling`` domain."""

    code: ClassVar[str] = "signaling_error"

    def __init__(self, reason: str, *, field: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.field = field

    def __str__(self) -> str:
        if self.field is None:
            return self.reason
        return f"{self.field}: {self.reason}"


class IllegalTransition(SignalingError):
    """A lifecycle event that the transition table does not allow from a state."""

    code = "illegal_transition"

    def __init__(self, state: str, event: str, reason: str | None = None) -> None:
        text = reason or f"cannot {event} a consult that is {state}"
        super().__init__(text)
        self.state = state
        self.event = event


class WrongState(IllegalTransition):
    """An action the person may take on the consult, but not while it is in this state."""

    code = "wrong_state"

    def __init__(self, state: str, action: str, reason: str) -> None:
        super().__init__(state, action, reason)
        self.field = "state"


class InvalidValue(SignalingError):
    """Input that fails validation; ``field`` always names it."""

    code = "invalid_value"

    def __init__(self, field: str | None, reason: str) -> None:
        super().__init__(reason, field=field)


class InvalidMessage(InvalidValue):
    """A signaling message that does not match the schema or its limits."""

    code = "invalid_message"


class NotAMember(SignalingError):
    """The user is not a member of the consult's room."""

    code = "not_a_member"

    def __init__(self, user: str, *, field: str | None = None) -> None:
        super().__init__(f"{user!r} is not a member of this room", field=field)
        self.user = user


class NotAllowed(SignalingError):
    """The person's relation to the consult never allows the action (see `signaling.access`)."""

    code = "not_allowed"


class TokenRejected(SignalingError):
    """A join token that is unknown, bound to something else, or expired."""

    code = "token_rejected"

    def __init__(self, reason: str) -> None:
        super().__init__(reason, field="token")


class WrongRoom(SignalingError):
    """A message or grant that names a different consult than this room's."""

    code = "wrong_room"

    def __init__(self, expected: str, got: str) -> None:
        reason = f"addressed to consult {got!r}, this room is {expected!r}"
        super().__init__(reason, field="consult")
        self.expected = expected
        self.got = got


class NotJoined(SignalingError):
    """The sending connection has not joined the room, or was replaced by a newer one."""

    code = "not_joined"


class NotOfferer(SignalingError):
    """An offer from the side that is not the pair's offerer, where a side is aiortc.

    aiortc cannot roll back a local offer, so such a pair has one named offerer.
    """

    code = "not_offerer"


class RoomClosed(SignalingError):
    """The room's consult is over (or not yet accepted); nobody may join or relay."""

    code = "room_closed"


class RecordingNotAllowed(SignalingError):
    """A recorder tried to join while not every member consented to recording."""

    code = "recording_not_allowed"


class ChatFull(SignalingError):
    """The consult already holds as many chat messages as may be stored; a new one is refused."""

    code = "chat_full"
