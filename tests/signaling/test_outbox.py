from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from signaling.errors import InvalidValue
from signaling.outbox import Outbox

T0 = datetime(2025, 3, 3, 2, 0, tzinfo=UTC)
S = timedelta(seconds=1)


def test_drain_returns_in_order_and_empties() -> None:
    box: Outbox[str] = Outbox(limit=4, max_age=30 * S)
    for i, item in enumerate("abc"):
        box.put(item, T0 + i * S)
    assert len(box) == 3
    assert list(box.drain(T0 + 5 * S)) == ["a", "b", "c"]
    assert len(box) == 0
    assert list(box.drain(T0 + 6 * S)) == []


def test_bounded_count_drops_the_oldest() -> None:
    box: Outbox[int] = Outbox(limit=3, max_age=30 * S)
    for i in range(5):
        box.put(i, T0)
    assert len(box) == 3
    assert box.dropped == 2
    assert list(box.drain(T0)) == [2, 3, 4]


def test_messages_age_out() -> None:
    box: Outbox[str] = Outbox(limit=10, max_age=30 * S)
    box.put("old", T0)
    box.put("edge", T0 + 10 * S)
    box.put("new", T0 + 20 * S)
    # at +40 s: "old" is 40 s old (gone), "edge" exactly 30 s (kept), "new" 20 s
    assert list(box.drain(T0 + 40 * S)) == ["edge", "new"]
    assert box.dropped == 1


def test_put_prunes_stale_entries_first() -> None:
    box: Outbox[str] = Outbox(limit=2, max_age=30 * S)
    box.put("a", T0)
    box.put("b", T0)
    box.put("c", T0 + 31 * S)  # a and b are stale: pruned, not counted against the limit
    assert list(box.drain(T0 + 31 * S)) == ["c"]
    assert box.dropped == 2


def test_settings_are_checked() -> None:
    with pytest.raises(InvalidValue):
        Outbox(limit=0)
    with pytest.raises(InvalidValue):
        Outbox(max_age=timedelta(0))
    box: Outbox[str] = Outbox()
    with pytest.raises(InvalidValue):
        box.put("x", datetime(2025, 3, 3))
