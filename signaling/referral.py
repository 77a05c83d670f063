"""A referral from a consult (SISRUTE-shaped): what the specialist asks of a hospital, and its answer.

The specialist names the receiving hospital (a facility code), the diagnosis (an ICD-10 code) and
the reason in words, how urgent it is (the consult's own urgency scale), the service the patient
needs there (a hospital service code, checked against the region's vocabulary by the server) and
whether the patient must be carried (an inter-facility transfer by PSC 119).

The hospital answers once: accept or decline with a reason. Repeating the same answer is no
change (a retried request); the other answer after one is refused.

Errors name the field as ``outcome.referral.<key>``, its place in the consult's completion.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from . import _check
from .errors import IllegalTransition, InvalidValue
from .icd10 import parse_code
from .urgency import Urgency

__all__ = ["Answer", "ReferralRequest", "ReferralState", "answer"]

FIELD = "outcome.referral"
REASON_MAX = 1000
DECLINE_MAX = 500
_WORD = re.compile(r"[a-z][a-z0-9_]{0,39}")
_CODE = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")


class ReferralState(StrEnum):
    REQUESTED = "requested"
    ACCEPTED = "accepted"
    DECLINED = "declined"


class Answer(StrEnum):
    ACCEPT = "accept"
    DECLINE = "decline"


_AFTER = {Answer.ACCEPT: ReferralState.ACCEPTED, Answer.DECLINE: ReferralState.DECLINED}


def answer(state: ReferralState, given: Answer) -> tuple[ReferralState, bool]:
    """The state after ``given`` and whether it changed anything (False: the same answer again)."""
    after = _AFTER[given]
    if state is ReferralState.REQUESTED:
        return after, True
    if state is after:
        return after, False
    raise IllegalTransition(state.value, given.value, f"the referral was already {state.value}")


@dataclass(frozen=True, slots=True)
class ReferralRequest:
    hospital: str  # the receiving hospital's facility code
    icd10: str
    reason: str
    urgency: Urgency
    service: str | None  # what the patient needs at the hospital (cath_lab, ct, ...), None: nothing in particular
    transport: bool  # PSC 119 carries the patient (an inter-facility transfer)

    def __post_init__(self) -> None:
        if not isinstance(self.hospital, str) or not _CODE.fullmatch(self.hospital):
            raise InvalidValue(f"{FIELD}.hospital", "must be a hospital's code")
        if parse_code(self.icd10, f"{FIELD}.icd10") != self.icd10:
            raise InvalidValue(f"{FIELD}.icd10", "must be in canonical form")
        _check.text(self.reason, f"{FIELD}.reason", max_len=REASON_MAX, multiline=True)
        if not isinstance(self.urgency, Urgency):
            raise InvalidValue(f"{FIELD}.urgency", "must be one of: emergency, urgent, routine")
        if self.service is not None and (not isinstance(self.service, str) or not _WORD.fullmatch(self.service)):
            raise InvalidValue(f"{FIELD}.service", "must be a service code")
        _check.boolean(self.transport, f"{FIELD}.transport")

    @classmethod
    def from_dict(cls, data: object) -> ReferralRequest:
        names = ("hospital", "icd10", "reason", "urgency", "service", "transport")
        fields = _check.fields(data, FIELD, names)
        for name in ("hospital", "icd10", "reason", "urgency", "transport"):
            if name not in fields:
                raise InvalidValue(f"{FIELD}.{name}", "is required")
        return cls(
            hospital=_check.text(fields["hospital"], f"{FIELD}.hospital", max_len=64),
            icd10=parse_code(fields["icd10"], f"{FIELD}.icd10"),
            reason=_check.text(fields["reason"], f"{FIELD}.reason", max_len=REASON_MAX, multiline=True).strip(),
            urgency=_check.choice(Urgency, fields["urgency"], f"{FIELD}.urgency"),
            service=fields.get("service"),  # type: ignore[arg-type]  # checked in __post_init__
            transport=_check.boolean(fields["transport"], f"{FIELD}.transport"),
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "hospital": self.hospital, "icd10": self.icd10, "reason": self.reason, "urgency": self.urgency.value,
            "service": self.service, "transport": self.transport,
        }
