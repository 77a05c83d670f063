"""Who can be in a consult's room, and what kind of WebRTC peer each one is."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["MemberRole", "PeerKind"]


class MemberRole(StrEnum):
    """A room member's part in the consult, in rank order (used for tie-breaks)."""

    REQUESTER = "requester"  # the puskesmas doctor who asked
    SPECIALIST = "specialist"  # the specialist who accepted
    RECORDER = "recorder"  # the server's consented aiortc recorder

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {MemberRole.REQUESTER: 0, MemberRole.SPECIALIST: 1, MemberRole.RECORDER: 2}


class PeerKind(StrEnum):
    """The WebRTC stack a peer runs, declared at join."""

    BROWSER = "browser"
    AIORTC = "aiortc"  # cannot roll back a local offer, has no restartIce()
