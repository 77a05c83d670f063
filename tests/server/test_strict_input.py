"""The strict JSON decoder and value checks on their own: no app, no database."""

from __future__ import annotations

import datetime as dt
import json

import pydantic
import pytest

from server import strict_input
from server.errors import BadRequest, InvalidField
from server.strict_input import MAX_DEPTH, MAX_INTEGER, Instant, loads


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_nesting_up_to_the_limit_decodes_and_one_more_level_is_refused_without_recursion() -> None:
    assert loads(nested(MAX_DEPTH)) == json.loads(nested(MAX_DEPTH))
    assert loads('{"a":' * MAX_DEPTH + "1" + "}" * MAX_DEPTH) is not None
    for text in (nested(MAX_DEPTH + 1), nested(100_000), "[" * 100_000, '{"a":' * 5000):
        with pytest.raises(BadRequest, match="32 levels"):
            loads(text)


def test_brackets_inside_strings_do_not_count_and_many_shallow_ones_pass() -> None:
    deep_looking = json.dumps({"note": "[" * 100 + '\\"{' * 50})
    assert loads(deep_looking) == json.loads(deep_looking)
    wide = json.dumps([[1, {"a": [2]}]] * 2000)
    assert loads(wide) == json.loads(wide)


def test_a_deep_document_names_the_top_level_field_it_nests_under() -> None:
    with pytest.raises(BadRequest) as refused:
        loads('{"ok": 1, "patient": {"vitals": ' + nested(40) + "}}")
    assert refused.value.field == "patient"
    for key in ('"\\x"', '"a\tb"', '"' + "k" * 300 + '"'):  # not a valid JSON string, or too long to quote
        with pytest.raises(BadRequest) as refused:
            loads("{" + key + ": " + nested(40) + "}")
        assert refused.value.field is None


@pytest.mark.parametrize("text,field", [
    ('{"patient": {"chief_complaint": "nyeri\\u0000dada"}}', "patient.chief_complaint"),
    ('{"notes": ["ok", "x\\udc80"]}', "notes.1"),
    ('{"a": "\\ud83d"}', "a"),
    ('{"k\\u0000": 1}', "k\\u0000"),
    ('{"n": 9007199254740993}', "n"),
    ('{"n": [-9007199254740993]}', "n.0"),
    # Digit runs in strings do not hide a large integer or a NUL.
    ('{"sdp": "o=- 4611731400430051336", "n": 90071992547409930}', "n"),
    ('{"a": ["x", {"b": [-90071992547409930]}]}', "a.1.b.0"),
    ('{"a": "nul\\u0000 after 1234567890123456"}', "a"),
])
def test_nul_lone_surrogates_and_integers_past_2_53_are_refused_naming_the_path(text: str, field: str) -> None:
    with pytest.raises(InvalidField) as refused:
        loads(text)
    assert refused.value.field == field


def test_a_lone_surrogate_given_raw_in_a_text_frame_is_refused_too() -> None:
    with pytest.raises(InvalidField) as refused:
        loads('{"text": "halo \udc80"}', what="message")
    assert refused.value.field == "text"


@pytest.mark.parametrize("text", ["[NaN]", '{"a": Infinity}', "[1e999]", '{"a": 1, "a": 2}', '["\x00"]', "", "[1,]",
                                  '{"n": 90071992547409930, "b": [}'])
def test_not_json_and_not_interoperable_json_are_refused(text: str) -> None:
    with pytest.raises(BadRequest):
        loads(text)


def test_valid_text_decodes_as_the_standard_decoder_does() -> None:
    text = json.dumps({"emoji": "\U0001F691", "escaped": "\\u0000 is text", "n": MAX_INTEGER, "x": -1.5e300})
    assert loads(text) == json.loads(text)
    assert loads(text.encode()) == json.loads(text)
    with pytest.raises(BadRequest, match="UTF-8"):
        loads(b'{"a": "\xff"}')
    with pytest.raises(BadRequest, match="at most 10 bytes"):
        loads(b"[" + b"1," * 10 + b"1]", max_bytes=10)


@pytest.mark.parametrize("value,ok", [
    ("2026-01-31T08:00:00+07:00", True),
    ("2026-01-31T01:00:00.123456789Z", True),
    ("0001-01-01T00:00:00+14:00", False),  # before year 1 in UTC
    ("9999-12-31T23:59:59-14:00", False),  # after year 9999 in UTC
    ("1700000000", False),
    ("2026-01-31", False),
    ("2026-01-31T08:00:00", False),  # no offset: which time?
    ("٢٠٢٦-01-31T08:00:00+07:00", False),
])
def test_an_instant_is_rfc3339_with_an_offset_and_fits_the_calendar_in_utc(value: str, ok: bool) -> None:
    adapter = pydantic.TypeAdapter(Instant)
    if ok:
        assert adapter.validate_python(value).utcoffset() is not None
    else:
        with pytest.raises(pydantic.ValidationError):
            adapter.validate_python(value)
    assert isinstance(adapter.validate_python("2026-01-31T08:00:00+07:00"), dt.datetime)


def test_a_clean_frame_is_checked_without_the_per_character_pattern(monkeypatch: pytest.MonkeyPatch) -> None:
    # A 3 KB SDP with a 19-digit session id: walked for integers, but its strings need no character-class scan.
    sdp = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\n" + "a=rtpmap:96 VP8/90000\r\n" * 130
    text = json.dumps({"type": "offer", "sdp": sdp, "note": "héllo"})
    scanned: list[str] = []

    pattern = strict_input._BAD_TEXT

    class Recording:
        def search(self, value: str) -> None:
            scanned.append(value)

        sub = pattern.sub  # keys are named with it as the walk goes

    monkeypatch.setattr("server.strict_input._BAD_TEXT", Recording())
    assert loads(text, what="message") == json.loads(text)
    assert scanned == []

