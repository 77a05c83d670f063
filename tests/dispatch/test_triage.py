"""dispatch.triage: the default table and building tables from plain dicts."""

from __future__ import annotations

import copy
import json

import pytest

from dispatch.errors import InvalidInput
from dispatch.priority import Priority
from dispatch.triage import (
    DEFAULT_TRIAGE_DATA,
    CallType,
    TriageTable,
    default_triage_table,
    triage_table_from_dict,
)


def plain(data: object) -> object:
    """A deep, mutable copy as it would come from json.loads."""
    return json.loads(json.dumps(data, default=lambda o: dict(o) if hasattr(o, "items") else list(o)))


def test_default_table_has_the_required_call_types() -> None:
    table = default_triage_table()
    for code in (
        "chest_pain",
        "traffic_accident",
        "labour",
        "breathing_difficulty",
        "unconscious",
        "stroke",
        "major_trauma",
        "burns",
        "poisoning",
        "seizure",
        "child_fever",
        "elderly_fall",
        "drowning",
        "mental_health_crisis",
        "general_sickness",
        "transfer_request",
    ):
        assert code in table, code
    chest = table.get("chest_pain")
    assert chest.label_id == "Nyeri dada"
    assert chest.label_en == "Chest pain"
    assert chest.priority is Priority.MERAH
    assert chest.capabilities == frozenset({"bls", "aed", "transport"})
    assert table.get("labour").label_id == "Persalinan"
    assert table.get("traffic_accident").label_id == "Kecelakaan lalu lintas"
    assert table.get("child_fever").priority is Priority.HIJAU
    assert table.get("transfer_request").capabilities == frozenset({"transport"})
    assert len(table) == len(DEFAULT_TRIAGE_DATA)


def test_round_trip_through_json() -> None:
    table = default_triage_table()
    again = triage_table_from_dict(json.loads(json.dumps(table.to_dict())))
    assert again == table


def test_an_edited_table() -> None:
    data = plain(DEFAULT_TRIAGE_DATA)
    assert isinstance(data, dict)
    data["chest_pain"]["priority"] = "P2"
    data["dengue_fever"] = {
        "label_id": "Demam berdarah",
        "label_en": "Dengue fever",
        "priority": "kuning",
        "capabilities": ["bls"],
    }
    del data["other"]
    table = triage_table_from_dict(data)
    assert table.get("chest_pain").priority is Priority.KUNING
    assert table.get("dengue_fever").label_id == "Demam berdarah"
    assert "other" not in table


def test_defaults_cannot_be_mutated() -> None:
    with pytest.raises(TypeError):
        DEFAULT_TRIAGE_DATA["x"] = {}  # type: ignore[index]
    with pytest.raises(TypeError):
        DEFAULT_TRIAGE_DATA["chest_pain"]["priority"] = "hijau"  # type: ignore[index]


def _valid() -> dict[str, dict[str, object]]:
    return {
        "chest_pain": {
            "label_id": "Nyeri dada",
            "label_en": "Chest pain",
            "priority": "merah",
            "capabilities": ["bls", "aed"],
        }
    }


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda d: d["chest_pain"].update(priority="ungu"), "call_types.chest_pain.priority"),
        (lambda d: d["chest_pain"].update(capabilities=["bls", "ALS"]), "call_types.chest_pain.capabilities[1]"),
        (lambda d: d["chest_pain"].update(capabilities="bls"), "call_types.chest_pain.capabilities"),
        (lambda d: d["chest_pain"].update(label_id=""), "call_types.chest_pain.label_id"),
        (lambda d: d["chest_pain"].update(label_en=5), "call_types.chest_pain.label_en"),
        (lambda d: d["chest_pain"].pop("label_en"), "call_types.chest_pain.label_en"),
        (lambda d: d["chest_pain"].update(colour="merah"), "call_types.chest_pain.colour"),
        (lambda d: d.update({"Chest Pain": d["chest_pain"]}), "call_types.Chest Pain"),
        (lambda d: d.update({"x": "y"}), "call_types.x"),
    ],
)
def test_errors_name_the_field(edit: object, field: str) -> None:
    data = _valid()
    edit(data)  # type: ignore[operator]
    with pytest.raises(InvalidInput) as info:
        triage_table_from_dict(data)
    assert info.value.field == field


def test_empty_and_non_mapping_tables_are_rejected() -> None:
    with pytest.raises(InvalidInput) as info:
        triage_table_from_dict({})
    assert info.value.field == "call_types"
    with pytest.raises(InvalidInput) as info:
        triage_table_from_dict([1, 2])
    assert info.value.field == "call_types"


def test_unknown_code_lookup_names_the_field() -> None:
    table = default_triage_table()
    with pytest.raises(InvalidInput) as info:
        table.get("alien_abduction", "call_type")
    assert info.value.field == "call_type"


def test_duplicate_codes_are_rejected() -> None:
    entry = CallType("burns", "Luka bakar", "Burns", Priority.KUNING, frozenset({"bls"}))
    with pytest.raises(InvalidInput) as info:
        TriageTable((entry, copy.copy(entry)))
    assert info.value.field == "call_types.burns"


def test_the_hospital_service_a_call_type_needs_is_optional_and_checked() -> None:
    table = default_triage_table()
    assert table.get("chest_pain").service == "cath_lab"
    assert table.get("stroke").service == "ct"
    assert table.get("labour").service == "obstetrics"
    assert table.get("major_trauma").service == "trauma_surgery"
    assert table.get("child_fever").service is None  # most call types go to the nearest hospital
    data = plain(DEFAULT_TRIAGE_DATA)
    assert isinstance(data, dict)
    del data["stroke"]["service"]  # a table written before services still reads
    data["seizure"]["service"] = "ct"
    edited = triage_table_from_dict(data)
    assert edited.get("stroke").service is None and edited.get("seizure").service == "ct"
    data["burns"]["service"] = "burn_unit"
    with pytest.raises(InvalidInput) as err:
        triage_table_from_dict(data)
    assert err.value.field == "call_types.burns.service" and "burn_unit" in err.value.message
    with pytest.raises(InvalidInput) as err:
        CallType("x_ray", "Rontgen", "X-ray", Priority.HIJAU, frozenset({"bls"}), "xray")
    assert err.value.field == "service"
