"""The open, editable triage table: call type -> labels, default priority, needs.

PSC 119 does not license a proprietary protocol (MPDS); its call types live
in a plain table that the Dinkes can edit. The server may load an edited
table from TOML, JSON or the database and pass the resulting dict to
``triage_table_from_dict``; ``TriageTable.to_dict`` writes it back.

``capabilities`` are the care the *first* responding unit must be able to
start, plus ``transport`` when the patient must be carried
(``dispatch.doctrine``): a call gets the fastest first responders and,
apart, the fastest carriers, so a motorbike team (bls, aed) can reach the
patient first while an ambulance comes for the transport.

``service`` is what the destination hospital must be able to treat
(``dispatch.hospitals``: a cath lab for chest pain, CT for stroke); most
call types need none, and an entry may leave it out.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from dispatch._checks import check_text
from dispatch.capabilities import parse_capabilities
from dispatch.errors import InvalidInput
from dispatch.hospitals import parse_service
from dispatch.priority import Priority, parse_priority

__all__ = [
    "DEFAULT_TRIAGE_DATA",
    "CallType",
    "TriageTable",
    "default_triage_table",
    "triage_table_from_dict",
]

_CODE = re.compile(r"[a-z][a-z0-9_]{0,39}")
_REQUIRED_KEYS = frozenset({"label_id", "label_en", "priority", "capabilities"})
_ENTRY_KEYS = _REQUIRED_KEYS | {"service"}


def _check_code(value: object, field_name: str) -> str:
    if not isinstance(value, str) or not _CODE.fullmatch(value):
        raise InvalidInput(
            field_name, "must be 1-40 characters of a-z, 0-9 and _, starting with a letter"
        )
    return value


@dataclass(frozen=True, slots=True)
class CallType:
    """One row of the triage table."""

    code: str
    label_id: str  # Bahasa Indonesia, shown by default
    label_en: str
    priority: Priority
    capabilities: frozenset[str]
    service: str | None = None  # what the destination hospital must have, if anything

    def __post_init__(self) -> None:
        _check_code(self.code, "code")
        check_text(self.label_id, "label_id", max_len=100, allow_empty=False)
        check_text(self.label_en, "label_en", max_len=100, allow_empty=False)
        if not isinstance(self.priority, Priority):
            raise InvalidInput("priority", "must be a Priority")
        if not isinstance(self.capabilities, frozenset):
            raise InvalidInput("capabilities", "must be a frozenset")
        parse_capabilities(sorted(self.capabilities), "capabilities")
        parse_service(self.service)

    def to_dict(self) -> dict[str, object]:
        return {
            "label_id": self.label_id,
            "label_en": self.label_en,
            "priority": self.priority.value,
            "capabilities": sorted(self.capabilities),
            "service": self.service,
        }


@dataclass(frozen=True, slots=True)
class TriageTable:
    """An immutable set of call types, looked up by code."""

    call_types: tuple[CallType, ...]
    _by_code: Mapping[str, CallType] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.call_types:
            raise InvalidInput("call_types", "must define at least one call type")
        by_code: dict[str, CallType] = {}
        for entry in self.call_types:
            if not isinstance(entry, CallType):
                raise InvalidInput("call_types", "entries must be CallType values")
            if entry.code in by_code:
                raise InvalidInput(f"call_types.{entry.code}", "is defined twice")
            by_code[entry.code] = entry
        object.__setattr__(self, "_by_code", MappingProxyType(by_code))

    def get(self, code: str, field_name: str = "call_type") -> CallType:
        """The call type for ``code``; InvalidInput naming ``field_name`` if unknown."""
        try:
            return self._by_code[code]
        except KeyError:
            raise InvalidInput(field_name, f"unknown call type {code!r}") from None

    def __contains__(self, code: object) -> bool:
        return code in self._by_code

    def __iter__(self) -> Iterator[CallType]:
        return iter(self.call_types)

    def __len__(self) -> int:
        return len(self.call_types)

    def to_dict(self) -> dict[str, dict[str, object]]:
        """The plain-dict form ``triage_table_from_dict`` reads back."""
        return {entry.code: entry.to_dict() for entry in self.call_types}


def triage_table_from_dict(data: object, field_name: str = "call_types") -> TriageTable:
    """Build a table from ``{code: {label_id, label_en, priority, capabilities, service?}}``.

    Every error names the field, e.g. ``call_types.chest_pain.priority``.
    Unknown keys are rejected: in a hand-edited table they are typos.
    """
    if not isinstance(data, Mapping):
        raise InvalidInput(field_name, "must be an object keyed by call type code")
    entries: list[CallType] = []
    for code, raw in data.items():
        where = f"{field_name}.{code}"
        _check_code(code, where)
        if not isinstance(raw, Mapping):
            raise InvalidInput(where, "must be an object")
        unknown = sorted(str(key) for key in raw if key not in _ENTRY_KEYS)
        if unknown:
            raise InvalidInput(f"{where}.{unknown[0]}", "unknown field")
        for key in sorted(_REQUIRED_KEYS):
            if key not in raw:
                raise InvalidInput(f"{where}.{key}", "is required")
        try:
            entries.append(
                CallType(
                    code=code,
                    label_id=check_text(raw["label_id"], "label_id", max_len=100, allow_empty=False),
                    label_en=check_text(raw["label_en"], "label_en", max_len=100, allow_empty=False),
                    priority=parse_priority(raw["priority"], "priority"),
                    capabilities=parse_capabilities(raw["capabilities"], "capabilities"),
                    service=parse_service(raw.get("service"), "service"),
                )
            )
        except InvalidInput as exc:
            raise exc.within(where) from None
    return TriageTable(tuple(entries))


# The default table, as data: (code, Indonesian label, English label, priority, capabilities).
# Capabilities: the first responder's care, plus "transport" when the patient goes to hospital.
_DEFAULT_ROWS: tuple[tuple[str, str, str, str, tuple[str, ...]], ...] = (
    ("cardiac_arrest", "Henti jantung", "Cardiac arrest", "merah", ("bls", "aed", "transport")),
    ("chest_pain", "Nyeri dada", "Chest pain", "merah", ("bls", "aed", "transport")),
    ("breathing_difficulty", "Sesak napas", "Breathing difficulty", "merah", ("bls", "transport")),
    ("unconscious", "Tidak sadar", "Unconscious person", "merah", ("bls", "aed", "transport")),
    ("stroke", "Stroke", "Stroke", "merah", ("bls", "transport")),
    ("traffic_accident", "Kecelakaan lalu lintas", "Traffic accident", "merah", ("bls", "transport")),
    ("major_trauma", "Luka berat / trauma", "Major trauma", "merah", ("bls", "transport")),
    ("severe_bleeding", "Perdarahan hebat", "Severe bleeding", "merah", ("bls", "transport")),
    ("allergic_reaction", "Reaksi alergi berat", "Severe allergic reaction", "merah", ("bls", "transport")),
    ("drowning", "Tenggelam", "Drowning", "merah", ("bls", "aed", "transport")),
    ("newborn_emergency", "Kegawatan bayi baru lahir", "Newborn emergency", "merah", ("bls", "transport")),
    ("burns", "Luka bakar", "Burns", "kuning", ("bls", "transport")),
    ("poisoning", "Keracunan", "Poisoning", "kuning", ("bls", "transport")),
    ("seizure", "Kejang", "Seizure", "kuning", ("bls", "transport")),
    ("labour", "Persalinan", "Labour / childbirth", "kuning", ("transport",)),
    ("elderly_fall", "Lansia jatuh", "Fall of an elderly person", "kuning", ("bls", "transport")),
    ("snake_bite", "Gigitan ular", "Snake bite", "kuning", ("bls", "transport")),
    ("diabetic_emergency", "Kegawatan gula darah", "Diabetic emergency", "kuning", ("bls",)),
    ("mental_health_crisis", "Krisis kesehatan jiwa", "Mental health crisis", "kuning", ("bls",)),
    ("child_fever", "Demam pada anak", "Fever in a child", "hijau", ("bls",)),
    ("general_sickness", "Sakit umum", "General sickness", "hijau", ("bls",)),
    ("transfer_request", "Permintaan antar pasien", "Transfer request", "hijau", ("transport",)),
    # A referral from a puskesmas consult that a hospital accepted: the priority comes from the referral's urgency.
    ("interfacility_transfer", "Rujukan antar fasilitas", "Inter-facility transfer", "kuning", ("transport",)),
    ("other", "Lainnya", "Other", "kuning", ("bls",)),
)

# What the destination hospital must have, for the call types that need something particular
# (the other call types go to the nearest hospital by ETA).
_DEFAULT_SERVICES: Mapping[str, str] = {
    "chest_pain": "cath_lab",  # a STEMI needs primary PCI within the hour
    "stroke": "ct",  # no thrombolysis before CT rules out a bleed
    "major_trauma": "trauma_surgery",
    "traffic_accident": "trauma_surgery",
    "burns": "burns",
    "labour": "obstetrics",
    "newborn_emergency": "nicu",
}

DEFAULT_TRIAGE_DATA: Mapping[str, Mapping[str, object]] = MappingProxyType(
    {
        code: MappingProxyType(
            {
                "label_id": label_id,
                "label_en": label_en,
                "priority": priority,
                "capabilities": capabilities,
                "service": _DEFAULT_SERVICES.get(code),
            }
        )
        for code, label_id, label_en, priority, capabilities in _DEFAULT_ROWS
    }
)


def default_triage_table() -> TriageTable:
    """The built-in table (a fresh value; tables are immutable anyway)."""
    return triage_table_from_dict(DEFAULT_TRIAGE_DATA)
