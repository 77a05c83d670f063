"""dispatch.call: intake validation, phone numbers and priority resolution."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from dispatch.call import Call, call_from_dict, normalize_phone, resolve_priority
from dispatch.errors import InvalidInput
from dispatch.geo import Point
from dispatch.priority import Priority
from dispatch.triage import default_triage_table

T0 = datetime(2024, 5, 1, 8, 0, tzinfo=timezone(timedelta(hours=7)))
TABLE = default_triage_table()


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("081234567890", "081234567890"),
        ("+62 812-3456-7890", "081234567890"),
        ("+6281234567890", "081234567890"),
        ("(021) 7463-1234", "02174631234"),
        ("119", "119"),
        ("112", "112"),
        ("+44 20 7946 0958", "+442079460958"),
        ("0812.3456.7890", "081234567890"),
    ],
)
def test_phone_normalisation(raw: str, canonical: str) -> None:
    assert normalize_phone(raw) == canonical


@pytest.mark.parametrize("bad", ["", "12", "+", "0812-abc", "08123456789012345678901", "++62812", 81234, None])
def test_phone_rejects(bad: object) -> None:
    with pytest.raises(InvalidInput) as info:
        normalize_phone(bad)
    assert info.value.field == "phone"
    # Phone numbers are patient data: they must not end up in logged messages.
    if isinstance(bad, str) and len(bad) > 3:
        assert bad not in str(info.value)


def test_call_stores_the_normalised_number() -> None:
    call = Call(phone="+62 812 3456 7890", received_at=T0)
    assert call.phone == "081234567890"
    assert call == Call(phone="081234567890", received_at=T0)


def test_call_from_dict_full() -> None:
    call = call_from_dict(
        {
            "phone": "0812 3456 7890",
            "caller_name": " Ibu Sari ",
            "location": {"lat": -6.3428, "lon": 106.7386},
            "address": "Jl. Siliwangi No. 5, Pamulang",
            "kelurahan": "Pamulang Barat",
            "kecamatan": "Pamulang",
            "call_type": "chest_pain",
            "priority": "P2",
            "notes": "Pasien laki-laki 60 th\nnyeri dada kiri",
        },
        received_at=T0,
        table=TABLE,
    )
    assert call.phone == "081234567890"
    assert call.caller_name == "Ibu Sari"
    assert call.location == Point(-6.3428, 106.7386)
    assert call.kecamatan == "Pamulang"
    assert call.priority is Priority.KUNING
    assert call.received_at == T0


def test_call_from_dict_minimal() -> None:
    call = call_from_dict({"phone": "119"}, received_at=T0)
    assert call.location is None and call.call_type is None and call.notes == ""


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({}, "phone"),
        ({"phone": "ab"}, "phone"),
        ({"phone": "119", "location": {"lat": -96, "lon": 106}}, "location.lat"),
        ({"phone": "119", "location": "Pamulang"}, "location"),
        ({"phone": "119", "call_type": "alien_abduction"}, "call_type"),
        ({"phone": "119", "call_type": 7}, "call_type"),
        ({"phone": "119", "priority": "urgent"}, "priority"),
        ({"phone": "119", "notes": "x" * 4001}, "notes"),
        ({"phone": "119", "address": "a\x00b"}, "address"),
        ({"phone": "119", "kelurahan": 5}, "kelurahan"),
        ({"phone": "119", "phone_number": "119"}, "phone_number"),
        ({"phone": "119", "caller_name": ["x"]}, "caller_name"),
    ],
)
def test_call_from_dict_errors_name_the_field(data: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as info:
        call_from_dict(data, received_at=T0, table=TABLE)
    assert info.value.field == field


def test_received_at_must_be_aware() -> None:
    with pytest.raises(InvalidInput) as info:
        Call(phone="119", received_at=datetime(2024, 5, 1, 8, 0))
    assert info.value.field == "received_at"


def test_resolve_priority() -> None:
    untriaged = Call(phone="119", received_at=T0)
    assert resolve_priority(untriaged, TABLE) is Priority.MERAH
    assert resolve_priority(untriaged, TABLE, default=Priority.KUNING) is Priority.KUNING
    fever = Call(phone="119", received_at=T0, call_type="child_fever")
    assert resolve_priority(fever, TABLE) is Priority.HIJAU
    overridden = Call(phone="119", received_at=T0, call_type="child_fever", priority=Priority.MERAH)
    assert resolve_priority(overridden, TABLE) is Priority.MERAH
    with pytest.raises(InvalidInput) as info:
        resolve_priority(Call(phone="119", received_at=T0, call_type="zzz"), TABLE)
    assert info.value.field == "call_type"
