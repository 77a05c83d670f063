"""The specialties a consult can be routed to, as stable string codes.

Codes are the Indonesian short names used by hospitals' SMF/KSM (staff medical
groups); each has an Indonesian and an English label for the UI.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

__all__ = ["Language", "Specialty"]

Language = Literal["id", "en"]


class Specialty(StrEnum):
    PENYAKIT_DALAM = "penyakit_dalam"
    ANAK = "anak"
    OBGYN = "obgyn"
    JANTUNG = "jantung"
    RADIOLOGI = "radiologi"
    SARAF = "saraf"
    BEDAH = "bedah"
    PARU = "paru"
    MATA = "mata"
    THT = "tht"
    KULIT_KELAMIN = "kulit_kelamin"
    JIWA = "jiwa"
    ORTOPEDI = "ortopedi"

    def label(self, language: Language = "id") -> str:
        """The display name in Bahasa Indonesia (default) or English."""
        indonesian, english = _LABELS[self]
        return indonesian if language == "id" else english


_LABELS: dict[Specialty, tuple[str, str]] = {
    Specialty.PENYAKIT_DALAM: ("Penyakit Dalam", "Internal medicine"),
    Specialty.ANAK: ("Anak", "Paediatrics"),
    Specialty.OBGYN: ("Obstetri dan Ginekologi", "Obstetrics and gynaecology"),
    Specialty.JANTUNG: ("Jantung dan Pembuluh Darah", "Cardiology"),
    Specialty.RADIOLOGI: ("Radiologi", "Radiology"),
    Specialty.SARAF: ("Neurologi (Saraf)", "Neurology"),
    Specialty.BEDAH: ("Bedah", "Surgery"),
    Specialty.PARU: ("Pulmonologi (Paru)", "Pulmonology"),
    Specialty.MATA: ("Mata", "Ophthalmology"),
    Specialty.THT: ("Telinga Hidung Tenggorok (THT-KL)", "Ear, nose and throat"),
    Specialty.KULIT_KELAMIN: ("Kulit dan Kelamin", "Dermatology and venereology"),
    Specialty.JIWA: ("Kedokteran Jiwa", "Psychiatry"),
    Specialty.ORTOPEDI: ("Ortopedi dan Traumatologi", "Orthopaedics and traumatology"),
}
