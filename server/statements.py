"""Statements built from parts that different modules write (a change's ``WITH`` items, its audit entry, its events,
a read another embeds): each part adds its values to the statement's `Params` and puts the placeholders it gets
back in its SQL, so no part counts the parameters of another."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class Params:
    """The parameters of one statement so far, in order: ``params.add(value)`` appends one and is its placeholder."""

    __slots__ = ("values",)

    def __init__(self) -> None:
        self.values: list[Any] = []

    def add(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"

    def add_all(self, values: Iterable[Any]) -> str:
        """Each of ``values``, their placeholders joined by commas (a ``VALUES`` list)."""
        return ", ".join(self.add(value) for value in values)
