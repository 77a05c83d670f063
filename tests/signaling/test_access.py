"""Consult access: every relation × state × action, against a table written out by hand from the rules the
server kept before they were one module (the handlers, the room and the SQL read rule)."""

from __future__ import annotations

import itertools

import pytest

from signaling import access
from signaling.access import Action, Person, Relation, Role, Subject
from signaling.consult import ConsultState
from signaling.errors import IllegalTransition, NotAllowed, NotAMember, RoomClosed, SignalingError, WrongState
from signaling.ids import UserId

R, C, E, S, Q, OTHER, A = (UserId(u) for u in ("11", "12", "13", "21", "22", "23", "31"))
STATES = list(ConsultState)  # requested, accepted, in_session, completed, cancelled, expired
assert [s.value for s in STATES] == ["requested", "accepted", "in_session", "completed", "cancelled", "expired"]

PERSONS = {
    "requester": Person(R, Role.PUSKESMAS, "P1"),
    "requester_moved": Person(R, Role.PUSKESMAS, "P2"),  # a consult they requested stays theirs
    "colleague": Person(C, Role.PUSKESMAS, "P1"),
    "elsewhere": Person(E, Role.PUSKESMAS, "P2"),
    "no_facility": Person(E, Role.PUSKESMAS, None),
    "specialist": Person(S, Role.SPECIALIST, None, frozenset({"jantung", "paru"})),
    "specialist_lapsed": Person(S, Role.SPECIALIST, None, frozenset({"mata"})),  # accepted it, no longer jantung
    "queue": Person(Q, Role.SPECIALIST, None, frozenset({"jantung"})),
    "other_specialty": Person(OTHER, Role.SPECIALIST, None, frozenset({"mata"})),
    "admin": Person(A, Role.ADMIN),
    "operator_with_the_ids": Person(R, Role.OTHER, "P1", frozenset({"jantung"})),
}


def subject(state: ConsultState) -> Subject:
    """A jantung consult from puskesmas P1, requested by R; accepted by S once it got that far."""
    accepted = state in (ConsultState.ACCEPTED, ConsultState.IN_SESSION, ConsultState.COMPLETED, ConsultState.CANCELLED)
    return Subject(state, R, "P1", "jantung", S if accepted else None)


# Per person and action, one letter per state in STATES order: y allowed, f forbidden (403), c conflict (409).
NOTHING = dict.fromkeys(Action, "ffffff")
REQUESTER = {**NOTHING, Action.READ: "yyyyyy", Action.CANCEL: "yycccc", Action.JOIN: "cyyccc",
             Action.ADD_FILES: "yyyccc", Action.CHAT: "cyyccc"}  # fmt: skip
EXPECTED: dict[str, dict[Action, str]] = {
    "requester": REQUESTER,
    "requester_moved": REQUESTER,
    "colleague": {**NOTHING, Action.READ: "yyyyyy"},
    "elsewhere": NOTHING,
    "no_facility": NOTHING,
    # A waiting request is in the queue (read, accept, decline); an expired one was never theirs.
    "specialist": {**NOTHING, Action.READ: "yyyyyf", Action.ACCEPT: "yccccc", Action.DECLINE: "yccccc",
                   Action.COMPLETE: "fyyccf", Action.JOIN: "fyyccf", Action.CHAT: "fyyccf"},
    "specialist_lapsed": {**NOTHING, Action.READ: "fyyyyf", Action.COMPLETE: "fyyccf", Action.JOIN: "fyyccf",
                          Action.CHAT: "fyyccf"},
    # Another specialist of the queue: a loser of the race to accept gets a conflict, not a refusal.
    "queue": {**NOTHING, Action.READ: "yfffff", Action.ACCEPT: "yccccc", Action.DECLINE: "yccccc"},
    "other_specialty": NOTHING,
    "admin": {**NOTHING, Action.READ: "yyyyyy"},
    "operator_with_the_ids": NOTHING,
}  # fmt: skip

CELLS = [
    (name, state, action)
    for name, action in itertools.product(PERSONS, Action)
    for state in STATES
]


def outcome(person: Person, state: ConsultState, action: Action) -> str:
    try:
        access.require(subject(state), person, action)
    except (IllegalTransition, RoomClosed):
        return "c"
    except (NotAllowed, NotAMember):
        return "f"
    return "y"


@pytest.mark.parametrize(("name", "state", "action"), CELLS)
def test_every_relation_state_and_action(name: str, state: ConsultState, action: Action) -> None:
    person = PERSONS[name]
    want = EXPECTED[name][action][STATES.index(state)]
    assert outcome(person, state, action) == want
    assert (action in access.allowed(subject(state), person)) == (want == "y")


def test_the_table_covers_every_action_and_state() -> None:
    assert set(Action) == {"read", "accept", "decline", "cancel", "complete", "join", "add_files", "chat"}
    assert all(set(row) == set(Action) and all(len(v) == len(STATES) for v in row.values()) for row in EXPECTED.values())


@pytest.mark.parametrize(
    ("name", "relations"),
    [
        ("requester", {Relation.REQUESTER, Relation.COLLEAGUE}),
        ("requester_moved", {Relation.REQUESTER}),
        ("colleague", {Relation.COLLEAGUE}),
        ("elsewhere", set()),
        ("no_facility", set()),
        ("specialist", {Relation.SPECIALIST, Relation.QUEUE}),
        ("specialist_lapsed", {Relation.SPECIALIST}),
        ("queue", {Relation.QUEUE}),
        ("other_specialty", set()),
        ("admin", {Relation.ADMIN}),
        ("operator_with_the_ids", set()),
    ],
)
def test_relations_of_each_person_to_an_accepted_consult(name: str, relations: set[Relation]) -> None:
    assert access.relations(subject(ConsultState.ACCEPTED), PERSONS[name]) == relations


@pytest.mark.parametrize(
    ("name", "state", "reader"),
    [
        ("requester", ConsultState.COMPLETED, Relation.REQUESTER),  # the requester before the colleague
        ("colleague", ConsultState.REQUESTED, Relation.COLLEAGUE),
        ("specialist", ConsultState.ACCEPTED, Relation.SPECIALIST),  # the specialist before the queue
        ("specialist", ConsultState.REQUESTED, Relation.QUEUE),
        ("queue", ConsultState.REQUESTED, Relation.QUEUE),
        ("queue", ConsultState.ACCEPTED, None),
        ("admin", ConsultState.EXPIRED, Relation.ADMIN),
        ("elsewhere", ConsultState.REQUESTED, None),
    ],
)
def test_a_read_names_the_first_relation_that_allows_it(name: str, state: ConsultState, reader: Relation | None) -> None:
    assert access.reader(subject(state), PERSONS[name]) == reader
    if reader is not None:
        assert access.require(subject(state), PERSONS[name], Action.READ) is reader


@pytest.mark.parametrize(
    ("name", "state", "action", "error", "text", "field"),
    [
        ("elsewhere", ConsultState.ACCEPTED, Action.READ, NotAllowed,
         "only the consult's doctors, its puskesmas and the admins may see it", None),
        ("other_specialty", ConsultState.REQUESTED, Action.ACCEPT, NotAllowed,
         "only a jantung specialist may accept this consult", None),
        ("other_specialty", ConsultState.REQUESTED, Action.DECLINE, NotAllowed,
         "only a jantung specialist may decline this consult", None),
        ("colleague", ConsultState.REQUESTED, Action.CANCEL, NotAllowed, "only the requesting doctor may cancel a consult", None),
        ("requester", ConsultState.ACCEPTED, Action.COMPLETE, NotAllowed,
         "only the accepting specialist may complete a consult", None),
        ("colleague", ConsultState.ACCEPTED, Action.ADD_FILES, NotAllowed, "only the requesting doctor may attach files", None),
        ("colleague", ConsultState.ACCEPTED, Action.JOIN, NotAMember, "'12' is not a member of this room", None),
        ("queue", ConsultState.ACCEPTED, Action.ACCEPT, IllegalTransition, "cannot accept a consult that is accepted", None),
        ("queue", ConsultState.ACCEPTED, Action.DECLINE, WrongState, "cannot decline a consult that is accepted", "state"),
        ("requester", ConsultState.COMPLETED, Action.CANCEL, IllegalTransition, "cannot cancel a consult that is completed", None),
        ("specialist", ConsultState.COMPLETED, Action.COMPLETE, IllegalTransition,
         "cannot complete a consult that is completed", None),
        ("requester", ConsultState.REQUESTED, Action.JOIN, RoomClosed, "a requested consult has no room", "state"),
        ("requester", ConsultState.CANCELLED, Action.CHAT, RoomClosed, "a cancelled consult has no room", "state"),
        ("requester", ConsultState.EXPIRED, Action.ADD_FILES, WrongState, "the consult is expired", "state"),
    ],
)  # fmt: skip
def test_each_refusal_says_why(
    name: str, state: ConsultState, action: Action, error: type[SignalingError], text: str, field: str | None
) -> None:
    with pytest.raises(SignalingError) as info:
        access.require(subject(state), PERSONS[name], action)
    assert type(info.value) is error
    assert (info.value.reason, info.value.field) == (text, field)
