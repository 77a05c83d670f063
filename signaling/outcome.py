"""How a consult ends: the specialist's SOAP notes and a decision.

Decisions and what each requires (anything else must be absent):

``advice``     the puskesmas manages the patient with the advice given.
``refer``      refer the patient: ``referral`` (`signaling.referral`) names the receiving
               hospital, the diagnosis and the reason. Consults completed before referrals
               were requests to a hospital carry ``refer_to`` instead, a hospital's name as
               text: they are still read, never written (`Outcome.submitted`).
``follow_up``  consult again; exactly one of ``follow_up_on`` (a date) or
               ``follow_up_in`` (an interval, whole hours, up to a year).

Errors name the field by its key in the JSON body, ``outcome.<key>`` /
``outcome.soap.<key>`` (the interval is ``outcome.follow_up_in_hours`` there).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from . import _check
from .errors import InvalidValue
from .referral import ReferralRequest

__all__ = ["Decision", "Outcome", "SoapNote"]

_OUTCOME = "outcome"
_SOAP = "outcome.soap"
SOAP_MAX = 10_000
HOSPITAL_MAX = 200
FOLLOW_UP_MAX = timedelta(days=365)
_HOUR = timedelta(hours=1)


class Decision(StrEnum):
    ADVICE = "advice"
    REFER = "refer"
    FOLLOW_UP = "follow_up"


@dataclass(frozen=True, slots=True)
class SoapNote:
    """Subjective and objective may be empty (e.g. a tele-radiology read); the
    assessment and the plan may not."""

    subjective: str
    objective: str
    assessment: str
    plan: str

    def __post_init__(self) -> None:
        for name in ("subjective", "objective"):
            value = getattr(self, name)
            _check.text(value, f"{_SOAP}.{name}", max_len=SOAP_MAX, required=False, multiline=True)
        for name in ("assessment", "plan"):
            _check.text(getattr(self, name), f"{_SOAP}.{name}", max_len=SOAP_MAX, multiline=True)

    @classmethod
    def from_dict(cls, data: object) -> SoapNote:
        names = ("subjective", "objective", "assessment", "plan")
        fields = _check.fields(data, _SOAP, names)
        values = [
            _check.text(
                fields.get(name, ""),
                f"{_SOAP}.{name}",
                max_len=SOAP_MAX,
                required=name in ("assessment", "plan"),
                multiline=True,
            )
            for name in names
        ]
        return cls(*values)

    def to_dict(self) -> dict[str, object]:
        return {
            "subjective": self.subjective,
            "objective": self.objective,
            "assessment": self.assessment,
            "plan": self.plan,
        }


@dataclass(frozen=True, slots=True)
class Outcome:
    soap: SoapNote
    decision: Decision
    refer_to: str | None = None
    referral: ReferralRequest | None = None
    follow_up_on: date | None = None
    follow_up_in: timedelta | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.soap, SoapNote):
            raise InvalidValue(_SOAP, "must be a SOAP note")
        if not isinstance(self.decision, Decision):
            raise InvalidValue(f"{_OUTCOME}.decision", "must be one of: advice, refer, follow_up")
        if self.refer_to is not None:
            _check.text(self.refer_to, f"{_OUTCOME}.refer_to", max_len=HOSPITAL_MAX)
        if self.referral is not None and not isinstance(self.referral, ReferralRequest):
            raise InvalidValue(f"{_OUTCOME}.referral", "must be a referral")
        if self.follow_up_on is not None and (
            not isinstance(self.follow_up_on, date) or isinstance(self.follow_up_on, datetime)
        ):
            raise InvalidValue(f"{_OUTCOME}.follow_up_on", "must be a date")
        if self.follow_up_in is not None:
            if not isinstance(self.follow_up_in, timedelta):
                raise InvalidValue(f"{_OUTCOME}.follow_up_in_hours", "must be an interval")
            if not _HOUR <= self.follow_up_in <= FOLLOW_UP_MAX or self.follow_up_in % _HOUR:
                raise InvalidValue(
                    f"{_OUTCOME}.follow_up_in_hours", "must be whole hours, 1 h to 365 days"
                )
        self._check_decision()

    def _check_decision(self) -> None:
        follow = (self.follow_up_on is not None, self.follow_up_in is not None)
        if self.decision is Decision.REFER:
            if self.referral is None and self.refer_to is None:
                raise InvalidValue(f"{_OUTCOME}.referral", "a referral must name the hospital")
            if self.referral is not None and self.refer_to is not None:
                raise InvalidValue(f"{_OUTCOME}.refer_to", "give the referral, not a hospital's name as well")
        else:
            for name in ("referral", "refer_to"):
                if getattr(self, name) is not None:
                    raise InvalidValue(f"{_OUTCOME}.{name}", "only a referral names a hospital")
        if self.decision is Decision.FOLLOW_UP:
            if follow == (False, False):
                raise InvalidValue(
                    f"{_OUTCOME}.follow_up_on", "a follow-up needs a date or an interval"
                )
            if follow == (True, True):
                raise InvalidValue(
                    f"{_OUTCOME}.follow_up_in_hours", "give a date or an interval, not both"
                )
        elif any(follow):
            name = "follow_up_on" if follow[0] else "follow_up_in_hours"
            raise InvalidValue(f"{_OUTCOME}.{name}", "only a follow-up decision has a follow-up")

    @classmethod
    def from_dict(cls, data: object) -> Outcome:
        """Parse ``{"soap": {...}, "decision": ..., "referral"? (or "refer_to"), "follow_up_on"?
        (YYYY-MM-DD), "follow_up_in_hours"?}``."""
        fields = _check.fields(
            data,
            _OUTCOME,
            ("soap", "decision", "refer_to", "referral", "follow_up_on", "follow_up_in_hours"),
        )
        if "soap" not in fields:
            raise InvalidValue(_SOAP, "is required")
        if "decision" not in fields:
            raise InvalidValue(f"{_OUTCOME}.decision", "is required")
        follow_on: date | None = None
        raw_on = fields.get("follow_up_on")
        if raw_on is not None:
            text = _check.text(raw_on, f"{_OUTCOME}.follow_up_on", max_len=10)
            try:
                follow_on = date.fromisoformat(text)
            except ValueError:
                field = f"{_OUTCOME}.follow_up_on"
                raise InvalidValue(field, "must be a date, YYYY-MM-DD") from None
        follow_in: timedelta | None = None
        raw_in = fields.get("follow_up_in_hours")
        if raw_in is not None:
            hours = _check.integer(raw_in, f"{_OUTCOME}.follow_up_in_hours", 1, 365 * 24)
            follow_in = timedelta(hours=hours)
        return cls(
            soap=SoapNote.from_dict(fields["soap"]),
            decision=_check.choice(Decision, fields["decision"], f"{_OUTCOME}.decision"),
            refer_to=_check.optional_text(
                fields.get("refer_to"), f"{_OUTCOME}.refer_to", max_len=HOSPITAL_MAX
            ),
            referral=None if fields.get("referral") is None else ReferralRequest.from_dict(fields["referral"]),
            follow_up_on=follow_on,
            follow_up_in=follow_in,
        )

    @classmethod
    def submitted(cls, data: object) -> Outcome:
        """An outcome a specialist submits now: a referral is a request to a hospital, never a name as text."""
        if isinstance(data, dict) and data.get("refer_to") is not None:
            raise InvalidValue(f"{_OUTCOME}.refer_to", "name the hospital in the referral (outcome.referral.hospital)")
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, object]:
        result: dict[str, object] = {"soap": self.soap.to_dict(), "decision": self.decision.value}
        if self.refer_to is not None:
            result["refer_to"] = self.refer_to
        if self.referral is not None:
            result["referral"] = self.referral.to_dict()
        if self.follow_up_on is not None:
            result["follow_up_on"] = self.follow_up_on.isoformat()
        if self.follow_up_in is not None:
            result["follow_up_in_hours"] = self.follow_up_in // _HOUR
        return result
