"""Values grouped by key, where a key with one value holds it alone.

Thousands of idle sockets each register under keys of their own (a phone's session, its user's and its unit's
event audience): an empty set is 216 bytes and one more object for every garbage collection to walk, so a key
gets a set only for its second value. The values must not be sets themselves.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V", bound=Hashable)


class Groups(Generic[K, V]):
    __slots__ = ("_held",)

    def __init__(self) -> None:
        self._held: dict[K, V | set[V]] = {}

    def __contains__(self, key: K) -> bool:
        return key in self._held

    def __len__(self) -> int:
        """The number of keys."""
        return len(self._held)

    def add(self, key: K, value: V) -> bool:
        """Add ``value`` under ``key``; whether the key is new."""
        held = self._held.get(key)
        if held is None:
            self._held[key] = value
            return True
        if isinstance(held, set):
            held.add(value)
        elif held != value:
            self._held[key] = {held, value}
        return False

    def discard(self, key: K, value: V) -> None:
        held = self._held.get(key)
        if isinstance(held, set):
            held.discard(value)
        if held == value or (isinstance(held, set) and not held):
            del self._held[key]

    def get(self, key: K) -> Collection[V]:
        held = self._held.get(key)
        return () if held is None else held if isinstance(held, set) else (held,)

    def pop(self, key: K) -> Collection[V]:
        held = self._held.pop(key, None)
        return () if held is None else held if isinstance(held, set) else (held,)
