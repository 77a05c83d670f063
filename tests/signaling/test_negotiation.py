from __future__ import annotations

import itertools

import pytest

from signaling.members import MemberRole, PeerKind
from signaling.negotiation import NegotiationRole, Side, pair_roles

REQ, SPEC, REC = MemberRole.REQUESTER, MemberRole.SPECIALIST, MemberRole.RECORDER
BROWSER, AIORTC = PeerKind.BROWSER, PeerKind.AIORTC
POLITE_OFFERER = NegotiationRole(polite=True, offerer=True)
IMPOLITE_OFFERER = NegotiationRole(polite=False, offerer=True)
IMPOLITE = NegotiationRole(polite=False, offerer=False)


def test_enum_values() -> None:
    assert [r.value for r in MemberRole] == ["requester", "specialist", "recorder"]
    assert [k.value for k in PeerKind] == ["browser", "aiortc"]


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        # two browsers: the requester is polite and offers, the specialist is impolite
        (Side(REQ, BROWSER), Side(SPEC, BROWSER), (POLITE_OFFERER, IMPOLITE)),
        # with aiortc, the browser offers and is the polite one, whatever the rank
        (Side(REQ, BROWSER), Side(SPEC, AIORTC), (POLITE_OFFERER, IMPOLITE)),
        (Side(REQ, AIORTC), Side(SPEC, BROWSER), (IMPOLITE, POLITE_OFFERER)),
        (Side(SPEC, BROWSER), Side(REC, AIORTC), (POLITE_OFFERER, IMPOLITE)),
        # two aiortc peers: the server names the higher-ranked one offerer, nobody polite
        (Side(REQ, AIORTC), Side(SPEC, AIORTC), (IMPOLITE_OFFERER, IMPOLITE)),
        (Side(SPEC, AIORTC), Side(REC, AIORTC), (IMPOLITE_OFFERER, IMPOLITE)),
    ],
)
def test_pair_roles(a: Side, b: Side, expected: tuple[NegotiationRole, NegotiationRole]) -> None:
    assert pair_roles(a, b) == expected
    assert pair_roles(b, a) == expected[::-1]  # symmetric, independent of argument order


ALL_SIDES = [Side(r, k) for r, k in itertools.product(MemberRole, PeerKind)]


@pytest.mark.parametrize(
    ("a", "b"), [(a, b) for a, b in itertools.permutations(ALL_SIDES, 2) if a.role is not b.role]
)
def test_invariants_for_every_pair(a: Side, b: Side) -> None:
    role_a, role_b = pair_roles(a, b)
    assert role_a.offerer != role_b.offerer  # exactly one offerer
    assert not (role_a.polite and role_b.polite)  # at most one polite side
    for side, role, other in ((a, role_a, b), (b, role_b, a)):
        if side.kind is AIORTC:
            assert not role.polite  # aiortc can never roll back
            if other.kind is BROWSER:
                assert not role.offerer  # the browser offers towards aiortc


def test_same_role_twice_is_a_bug() -> None:
    with pytest.raises(ValueError):
        pair_roles(Side(REQ, BROWSER), Side(REQ, AIORTC))
