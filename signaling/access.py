"""Who may do what with a consult: one pure rule for reading it, acting on it and being in its room.

A person stands in one or more *relations* to a consult:

- ``requester``: the puskesmas doctor who asked (theirs wherever they work now);
- ``colleague``: a puskesmas doctor of the requesting puskesmas (the next shift takes
  over the patients waiting for an answer and the answers that came in);
- ``specialist``: the specialist who accepted it;
- ``queue``: a specialist of its specialty (the one who accepted too, if they still are);
- ``admin``: any admin.

What each relation may do, and in which states (`RULES`):

==========  =========================================================================
read        admin, requester, colleague, specialist: always; queue: while requested
accept      queue: while requested
decline     queue: while requested
cancel      requester: while requested or accepted
complete    specialist: while accepted or in session
join        requester, specialist: while accepted or in session (the room is open)
add_files   requester: until the consult ends
chat        requester, specialist: while the room is open
==========  =========================================================================

The states of accept, cancel and complete are the transition table's
(`signaling.consult.TRANSITIONS`). A refused action says whose fault it is: a person
whose relations never allow it gets `NotAllowed` (`NotAMember` for the room), a
person refused only because of the consult's state gets a conflict — except a read,
which is simply not theirs (a specialist of the queue reads nothing once another one
accepted).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from .consult import Consult, ConsultEvent, ConsultState, allowed_events
from .errors import IllegalTransition, NotAllowed, NotAMember, RoomClosed, SignalingError, WrongState
from .ids import UserId

__all__ = [
    "Action",
    "Person",
    "Relation",
    "Role",
    "RULES",
    "Subject",
    "allowed",
    "reader",
    "relations",
    "require",
]


class Role(StrEnum):
    """What a person's role makes them to consults; every other role is ``other``."""

    PUSKESMAS = "puskesmas"
    SPECIALIST = "specialist"
    ADMIN = "admin"
    OTHER = "other"


class Relation(StrEnum):
    """Why a person may act on a consult, in the order a read names it."""

    ADMIN = "admin"
    REQUESTER = "requester"
    COLLEAGUE = "colleague"
    SPECIALIST = "specialist"
    QUEUE = "queue"


class Action(StrEnum):
    READ = "read"
    ACCEPT = "accept"
    DECLINE = "decline"
    CANCEL = "cancel"
    COMPLETE = "complete"
    JOIN = "join"
    ADD_FILES = "add_files"
    CHAT = "chat"


@dataclass(frozen=True, slots=True)
class Person:
    user: UserId
    role: Role
    facility: str | None = None
    specialties: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Subject:
    """A consult as access sees it: its state and the people and places it concerns."""

    state: ConsultState
    requester: UserId
    facility: str
    specialty: str
    specialist: UserId | None = None

    @classmethod
    def of(cls, consult: Consult, facility: str) -> Subject:
        return cls(consult.state, consult.requester, facility, consult.specialty.value, consult.specialist)


def relations(subject: Subject, person: Person) -> frozenset[Relation]:
    found: set[Relation] = set()
    if person.role is Role.ADMIN:
        found.add(Relation.ADMIN)
    if person.role is Role.PUSKESMAS:
        if person.user == subject.requester:
            found.add(Relation.REQUESTER)
        if person.facility is not None and person.facility == subject.facility:
            found.add(Relation.COLLEAGUE)
    if person.role is Role.SPECIALIST:
        if person.user == subject.specialist:
            found.add(Relation.SPECIALIST)
        if subject.specialty in person.specialties:
            found.add(Relation.QUEUE)
    return frozenset(found)


_S = ConsultState
_ALWAYS = frozenset(ConsultState)
_ROOM = frozenset(s for s in ConsultState if s.has_room)


def _states(event: ConsultEvent) -> frozenset[ConsultState]:
    return frozenset(s for s in ConsultState if event in allowed_events(s))


@dataclass(frozen=True, slots=True)
class Rule:
    """Which relations may take an action in which states, and what a refusal says."""

    who: Mapping[Relation, frozenset[ConsultState]]
    #: The refusal of a person whose relations never allow the action.
    not_theirs: Callable[[Subject, Person], SignalingError]
    #: The refusal of a person who may take it, but not in this state; None: a read, never a conflict.
    not_now: Callable[[Subject, Action], SignalingError] | None


def _transition(subject: Subject, action: Action) -> SignalingError:
    return IllegalTransition(subject.state.value, action.value)


def _no_room(subject: Subject, action: Action) -> SignalingError:
    return RoomClosed(f"a {subject.state.value} consult has no room", field="state")


def _forbidden(text: str) -> Callable[[Subject, Person], SignalingError]:
    return lambda subject, person: NotAllowed(text.format(specialty=subject.specialty))


def _not_a_member(subject: Subject, person: Person) -> SignalingError:
    return NotAMember(person.user)


_DOCTORS = (Relation.REQUESTER, Relation.SPECIALIST)

RULES: Final[Mapping[Action, Rule]] = {
    Action.READ: Rule(
        {Relation.ADMIN: _ALWAYS, Relation.REQUESTER: _ALWAYS, Relation.COLLEAGUE: _ALWAYS,
         Relation.SPECIALIST: _ALWAYS, Relation.QUEUE: frozenset({_S.REQUESTED})},
        _forbidden("only the consult's doctors, its puskesmas and the admins may see it"),
        None,
    ),
    Action.ACCEPT: Rule(
        {Relation.QUEUE: _states(ConsultEvent.ACCEPT)},
        _forbidden("only a {specialty} specialist may accept this consult"),
        _transition,
    ),
    Action.DECLINE: Rule(
        {Relation.QUEUE: frozenset({_S.REQUESTED})},
        _forbidden("only a {specialty} specialist may decline this consult"),
        lambda subject, action: WrongState(
            subject.state.value, action.value, f"cannot decline a consult that is {subject.state.value}"
        ),
    ),
    Action.CANCEL: Rule(
        {Relation.REQUESTER: _states(ConsultEvent.CANCEL)},
        _forbidden("only the requesting doctor may cancel a consult"),
        _transition,
    ),
    Action.COMPLETE: Rule(
        {Relation.SPECIALIST: _states(ConsultEvent.COMPLETE)},
        _forbidden("only the accepting specialist may complete a consult"),
        _transition,
    ),
    Action.JOIN: Rule(dict.fromkeys(_DOCTORS, _ROOM), _not_a_member, _no_room),
    Action.ADD_FILES: Rule(
        {Relation.REQUESTER: frozenset(s for s in ConsultState if not s.terminal)},
        _forbidden("only the requesting doctor may attach files"),
        lambda subject, action: WrongState(subject.state.value, action.value, f"the consult is {subject.state.value}"),
    ),
    Action.CHAT: Rule(dict.fromkeys(_DOCTORS, _ROOM), _not_a_member, _no_room),
}  # fmt: skip


def _granting(rule: Rule, subject: Subject, mine: frozenset[Relation]) -> Relation | None:
    """The first of ``mine`` (in `Relation` order) that the rule allows in the subject's state."""
    return next((r for r in Relation if r in mine and subject.state in rule.who.get(r, ())), None)


def allowed(subject: Subject, person: Person) -> frozenset[Action]:
    """Every action ``person`` may take on the consult now."""
    mine = relations(subject, person)
    return frozenset(a for a, rule in RULES.items() if _granting(rule, subject, mine) is not None)


def reader(subject: Subject, person: Person) -> Relation | None:
    """The relation under which ``person`` reads the consult now, None when they may not."""
    return _granting(RULES[Action.READ], subject, relations(subject, person))


def require(subject: Subject, person: Person, action: Action) -> Relation:
    """The relation that allows ``person`` to take ``action`` now, or raise its refusal."""
    rule = RULES[action]
    mine = relations(subject, person)
    granting = _granting(rule, subject, mine)
    if granting is not None:
        return granting
    if rule.not_now is not None and any(r in rule.who for r in mine):
        raise rule.not_now(subject, action)
    raise rule.not_theirs(subject, person)
