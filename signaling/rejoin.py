"""What a peer does with its connection to another member when either side rejoins the room.

A dropped signaling socket is not a failed call: the RTCPeerConnection runs peer to
peer and keeps its media while the socket reconnects. So when a member appears again
(in our ``welcome`` after our own rejoin, or in a ``presence: joined`` after theirs),
a connected pair is kept when both sides still have it: either that member did not
reconnect at all (same generation), or its join said it kept its side towards us
(``resumed``). Otherwise the pair is negotiated again, by its offerer; the other side
asks the offerer with ``ice_restart`` when the offerer believes the pair still works
(it would not renegotiate by itself). Renegotiating a working call is what this avoids;
a pair whose media path fails (ICE failed) recovers through ICE, not through here.

Pure: the aiortc peer (`signaling.peer`) and the browser (``web/js/room_link.js``, the
same table) apply it.
"""

from __future__ import annotations

from enum import Enum

__all__ = ["PairStep", "after_rejoin"]


class PairStep(Enum):
    KEEP = "keep"  # the connection stays as it is
    OFFER = "offer"  # negotiate a new connection (we are the pair's offerer)
    ASK_RESTART = "ask_restart"  # drop ours, ask the offerer for a new offer
    WAIT = "wait"  # drop ours, the offerer will offer by itself


def after_rejoin(*, has_link: bool, connected: bool, same_generation: bool, resumed: bool, offerer: bool) -> PairStep:
    """``has_link``/``connected``: our connection to the member and its state;
    ``same_generation``: the member is on the connection our link was made with;
    ``resumed``: the member's join kept its side of the pair; ``offerer``: our role."""
    other_side_kept = resumed or (has_link and same_generation)
    if has_link and connected and other_side_kept:
        return PairStep.KEEP
    if offerer:
        return PairStep.OFFER
    return PairStep.ASK_RESTART if other_side_kept else PairStep.WAIT
