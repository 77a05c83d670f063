"""ICD-10 codes as a referral's diagnosis: the code's form, and the codes a referral most often names.

Indonesia codes diagnoses in WHO ICD-10 (INA-CBG claims, SISRUTE referrals): a letter, two
digits, and after a dot one or two more characters for the subcategory (``I21.9``, ``O14.1``,
``A91`` has none). Any code of that form is accepted, not only the listed ones: the list is
what the specialist's form suggests, with labels for both languages.
"""

from __future__ import annotations

import re
from types import MappingProxyType

from . import _check
from .errors import InvalidValue

__all__ = ["COMMON", "parse_code"]

_CODE = re.compile(r"[A-Z][0-9]{2}(\.[0-9A-Z]{1,2})?")
_MAX = 10

# Referral diagnoses a puskesmas sees most: code -> (Bahasa Indonesia, English).
COMMON: MappingProxyType[str, tuple[str, str]] = MappingProxyType({
    "I21.9": ("Infark miokard akut", "Acute myocardial infarction"),
    "I63.9": ("Stroke infark", "Cerebral infarction"),
    "I61.9": ("Stroke perdarahan intraserebral", "Intracerebral haemorrhage"),
    "I50.9": ("Gagal jantung", "Heart failure"),
    "O14.1": ("Preeklampsia berat", "Severe pre-eclampsia"),
    "O72.1": ("Perdarahan pascapersalinan", "Postpartum haemorrhage"),
    "O62.2": ("Persalinan macet / inersia uteri", "Uterine inertia"),
    "P07.3": ("Bayi prematur", "Preterm newborn"),
    "P22.0": ("Sindrom gawat napas neonatus", "Respiratory distress syndrome of newborn"),
    "A91": ("Demam berdarah dengue", "Dengue haemorrhagic fever"),
    "A09": ("Diare dan gastroenteritis infeksi", "Infectious gastroenteritis"),
    "J18.9": ("Pneumonia", "Pneumonia"),
    "J45.9": ("Asma", "Asthma"),
    "A15.0": ("Tuberkulosis paru", "Pulmonary tuberculosis"),
    "K35.8": ("Apendisitis akut", "Acute appendicitis"),
    "S06.9": ("Cedera kepala", "Intracranial injury"),
    "S72.0": ("Fraktur leher femur", "Fracture of neck of femur"),
    "E11.9": ("Diabetes melitus tipe 2", "Type 2 diabetes mellitus"),
    "N18.9": ("Penyakit ginjal kronik", "Chronic kidney disease"),
    "T63.0": ("Gigitan ular berbisa", "Venomous snake bite"),
})


def parse_code(value: object, field: str) -> str:
    """An ICD-10 code in its canonical form (upper case, with the dot): ``i21.9`` -> ``I21.9``."""
    code = _check.text(value, field, max_len=_MAX).strip().upper()
    if not _CODE.fullmatch(code):
        raise InvalidValue(field, "must be an ICD-10 code: a letter, two digits, optionally a dot and 1-2 more (e.g. I21.9)")
    return code
