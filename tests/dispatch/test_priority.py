"""dispatch.priority: triage colours and their order."""

from __future__ import annotations

import pytest

from dispatch.errors import InvalidInput
from dispatch.priority import Priority, parse_priority


def test_values_and_codes() -> None:
    assert [p.value for p in Priority] == ["merah", "kuning", "hijau"]
    assert [p.code for p in Priority] == ["P1", "P2", "P3"]
    assert [p.rank for p in Priority] == [1, 2, 3]


def test_merah_is_served_first() -> None:
    assert sorted([Priority.HIJAU, Priority.MERAH, Priority.KUNING]) == [
        Priority.MERAH,
        Priority.KUNING,
        Priority.HIJAU,
    ]
    assert Priority.MERAH < Priority.KUNING < Priority.HIJAU
    assert Priority.HIJAU > Priority.MERAH
    assert Priority.KUNING <= Priority.KUNING
    assert Priority.MERAH.outranks(Priority.KUNING)
    assert not Priority.HIJAU.outranks(Priority.KUNING)
    assert not Priority.KUNING.outranks(Priority.KUNING)


def test_not_comparable_with_strings() -> None:
    with pytest.raises(TypeError):
        _ = Priority.MERAH < "kuning"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("merah", Priority.MERAH),
        ("MERAH", Priority.MERAH),
        (" Kuning ", Priority.KUNING),
        ("hijau", Priority.HIJAU),
        ("P1", Priority.MERAH),
        ("p2", Priority.KUNING),
        ("P3", Priority.HIJAU),
        ("red", Priority.MERAH),
        ("green", Priority.HIJAU),
    ],
)
def test_parse(text: str, expected: Priority) -> None:
    assert parse_priority(text) is expected


@pytest.mark.parametrize("bad", ["P4", "biru", "", 1, None])
def test_parse_rejects(bad: object) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_priority(bad, "call.priority")
    assert info.value.field == "call.priority"
