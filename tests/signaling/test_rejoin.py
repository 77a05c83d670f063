from __future__ import annotations

import pytest

from signaling.rejoin import PairStep, after_rejoin


@pytest.mark.parametrize(
    ("has_link", "connected", "same_generation", "resumed", "offerer", "step"),
    [
        # The other side did not reconnect, or kept its side: a working pair stays.
        (True, True, True, False, True, PairStep.KEEP),
        (True, True, False, True, False, PairStep.KEEP),
        # The other side came back without its connection (a new process, a reloaded page): negotiate again.
        (True, True, False, False, True, PairStep.OFFER),
        (True, True, False, False, False, PairStep.WAIT),
        # Ours is not working but the other side believes it is: the offerer offers, the other asks it to.
        (True, False, True, False, True, PairStep.OFFER),
        (True, False, True, False, False, PairStep.ASK_RESTART),
        (False, False, False, True, False, PairStep.ASK_RESTART),
        # Nothing on either side: the offerer offers, the other waits for it.
        (False, False, False, False, True, PairStep.OFFER),
        (False, False, False, False, False, PairStep.WAIT),
    ],
)
def test_a_pair_is_kept_only_when_both_sides_still_have_it(
    has_link: bool, connected: bool, same_generation: bool, resumed: bool, offerer: bool, step: PairStep
) -> None:
    assert after_rejoin(has_link=has_link, connected=connected, same_generation=same_generation, resumed=resumed, offerer=offerer) is step
