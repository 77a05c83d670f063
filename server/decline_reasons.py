"""A hospital's reason for declining a patient on the way or a referral: one line that whoever asked reads
before choosing another hospital, so one rule for both (`dispatch.prearrival.parse_reason`)."""

from __future__ import annotations

import pydantic

from dispatch.errors import InvalidInput
from dispatch.prearrival import REASON_MAX, parse_reason
from server.errors import InvalidField


class DeclineBody(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", strict=True)
    reason: str = pydantic.Field(max_length=REASON_MAX, description="why the hospital cannot take the patient; whoever asked reads it")


def reason_of(body: DeclineBody) -> str:
    """The reason, stripped; a 422 naming ``reason`` if it is blank or not one line."""
    try:
        return parse_reason(body.reason)
    except InvalidInput as exc:
        raise InvalidField(exc.message, field=exc.field) from None
