"""Roles for the "perfect negotiation" pattern, assigned by the server per pair.

Every pair of peers in a room negotiates its own RTCPeerConnection. For each
pair the server names, from each side's point of view:

``polite``
    On an offer collision the polite side rolls back its own offer and accepts
    the other's; the impolite side ignores the incoming offer.
``offerer``
    This side makes the first offer and the ICE-restart offers of the pair.
    The other side asks for a restart with an ``ice_restart`` message instead.

Exactly one side of a pair is the offerer. The roles depend only on the two
members' room roles and peer kinds, so they are stable across reconnects:

=====================  =====================  ==============================
higher-ranked side     lower-ranked side      result
=====================  =====================  ==============================
browser                browser                higher: polite + offerer
browser                aiortc                 browser: polite + offerer
aiortc                 browser                browser: polite + offerer
aiortc                 aiortc                 higher: offerer, both impolite
=====================  =====================  ==============================

(rank: requester > specialist > recorder). aiortc cannot roll back a local offer
(a remote offer in ``have-local-offer`` raises ``InvalidStateError``) and has no
``restartIce()``, so an aiortc side is never polite and never offers to a
browser; two aiortc sides never collide because only the offerer offers, and it
recovers by renegotiating on a new RTCPeerConnection.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from .members import MemberRole, PeerKind

__all__ = ["NegotiationRole", "Side", "pair_roles"]


class Side(NamedTuple):
    role: MemberRole
    kind: PeerKind


@dataclass(frozen=True, slots=True)
class NegotiationRole:
    polite: bool
    offerer: bool


_POLITE_OFFERER = NegotiationRole(polite=True, offerer=True)
_IMPOLITE_OFFERER = NegotiationRole(polite=False, offerer=True)
_IMPOLITE = NegotiationRole(polite=False, offerer=False)


def _ranked(high: PeerKind, low: PeerKind) -> tuple[NegotiationRole, NegotiationRole]:
    if high is PeerKind.BROWSER:
        return _POLITE_OFFERER, _IMPOLITE
    if low is PeerKind.BROWSER:
        return _IMPOLITE, _POLITE_OFFERER
    return _IMPOLITE_OFFERER, _IMPOLITE


def pair_roles(a: Side, b: Side) -> tuple[NegotiationRole, NegotiationRole]:
    """The roles of ``a`` and of ``b`` towards each other (in that order)."""
    if a.role is b.role:
        raise ValueError(f"a pair needs two different member roles, got {a.role.value} twice")
    if a.role.rank < b.role.rank:
        return _ranked(a.kind, b.kind)
    role_b, role_a = _ranked(b.kind, a.kind)
    return role_a, role_b
