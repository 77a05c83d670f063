"""dispatch.errors and the shared validators: one tree, errors that name the field."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from dispatch._checks import check_aware, check_text
from dispatch.errors import DispatchError, IllegalTransition, InvalidInput, UnknownUnit


def test_one_tree() -> None:
    for error in (InvalidInput, IllegalTransition, UnknownUnit):
        assert issubclass(error, DispatchError)
    assert issubclass(UnknownUnit, KeyError)


def test_invalid_input_carries_field_and_message() -> None:
    error = InvalidInput("lat", "must be between -90 and 90")
    assert error.field == "lat"
    assert error.message == "must be between -90 and 90"
    assert str(error) == "lat: must be between -90 and 90"
    nested = error.within("location")
    assert nested.field == "location.lat" and nested.message == error.message


def test_illegal_transition_message() -> None:
    error = IllegalTransition("incident", "closed", "open", ())
    assert str(error) == "incident: cannot go from 'closed' to 'open' (allowed: none)"
    assert (error.lifecycle, error.current, error.target, error.allowed) == ("incident", "closed", "open", ())


def test_check_text() -> None:
    assert check_text("baris 1\r\nbaris 2\tx", "notes", max_len=100) == "baris 1\r\nbaris 2\tx"
    with pytest.raises(InvalidInput, match="control characters"):
        check_text("a\x1bb", "notes", max_len=100)
    with pytest.raises(InvalidInput, match="at most 3"):
        check_text("abcd", "notes", max_len=3)
    with pytest.raises(InvalidInput, match="must not be empty"):
        check_text("  ", "callsign", max_len=3, allow_empty=False)


def test_check_aware() -> None:
    moment = datetime(2024, 5, 1, tzinfo=timezone(timedelta(hours=7)))
    assert check_aware(moment, "at") is moment
    with pytest.raises(InvalidInput) as info:
        check_aware(datetime(2024, 5, 1), "at")
    assert info.value.field == "at"
    with pytest.raises(InvalidInput):
        check_aware("2024-05-01T00:00:00+07:00", "at")
