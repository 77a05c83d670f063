"""What a field unit's phone may send on its socket: one frozen record per kind, parsed here only."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
from typing import Any, Literal

from dispatch.errors import InvalidInput
from dispatch.vitals import Patient, Vitals, parse_patient, parse_vitals
from server.errors import InvalidField


@dataclasses.dataclass(frozen=True, slots=True)
class Sent:
    """When the crew pressed the button, and the phone's id for that press: a report kept on the phone while
    it had no signal arrives late, maybe twice, and still counts once, at the time it was made."""

    report_id: str | None = None
    reported_at: dt.datetime | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Ack:
    assignment_id: int
    sent: Sent = Sent()
    type: Literal["ack"] = "ack"


@dataclasses.dataclass(frozen=True, slots=True)
class StatusReport:
    status: str
    reason: str | None
    assignment_id: int | None
    sent: Sent = Sent()
    type: Literal["status"] = "status"


@dataclasses.dataclass(frozen=True, slots=True)
class PositionReport:
    lat: float
    lon: float
    accuracy: float | None
    at: dt.datetime
    type: Literal["position"] = "position"


@dataclasses.dataclass(frozen=True, slots=True)
class VitalsReport:
    """Signs the crew measured (and the patient's age and sex, if learnt), kept on the phone until sent:
    ``report_id`` is the key that makes a resent set count once, ``vitals.measured_at`` its time."""

    incident_id: str
    vitals: Vitals
    patient: Patient | None
    report_id: str
    type: Literal["vitals"] = "vitals"


@dataclasses.dataclass(frozen=True, slots=True)
class DestinationReport:
    """The crew chose the hospital it carries the patient to: ``report_id`` makes a resent report count once."""

    incident_id: str
    facility: str
    report_id: str
    type: Literal["destination"] = "destination"


@dataclasses.dataclass(frozen=True, slots=True)
class HandoverReport:
    """The crew handed the patient over at the hospital: it counts at the press, however late it arrives."""

    incident_id: str
    sent: Sent = Sent()
    type: Literal["handover"] = "handover"


@dataclasses.dataclass(frozen=True, slots=True)
class Ping:
    type: Literal["ping"] = "ping"


UnitMessage = Ack | StatusReport | PositionReport | VitalsReport | DestinationReport | HandoverReport | Ping
SENT = {"report_id", "reported_at"}
FIELDS = {"ack": {"assignment_id", "ref"} | SENT, "status": {"status", "reason", "assignment_id", "ref"} | SENT,
          "position": {"lat", "lon", "accuracy", "at", "ref"}, "ping": {"ref"},
          "vitals": {"incident_id", "vitals", "patient", "report_id", "ref"}, "destination": {"incident_id", "facility", "report_id", "ref"},
          "handover": {"incident_id", "ref"} | SENT}
# A phone clock may be off a little; a fix far in the future or past is refused.
MAX_CLOCK_SKEW = dt.timedelta(minutes=5)
MAX_FIX_AGE = dt.timedelta(hours=1)
# A status report may wait on the phone this long for a signal (a long transport out of coverage).
MAX_REPORT_AGE = dt.timedelta(hours=6)
REPORT_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


def parse(message: dict[str, Any], now: dt.datetime) -> UnitMessage:
    kind = message.get("type")
    if kind not in FIELDS:
        raise InvalidField(f"unknown message type {kind!r}; one of {', '.join(sorted(FIELDS))}", field="type")
    unknown = sorted(set(message) - FIELDS[kind] - {"type"})
    if unknown:
        raise InvalidField("is not a known field", field=unknown[0])
    if kind == "ack":
        return Ack(_int(message, "assignment_id", required=True), _sent(message, now))
    if kind == "status":
        status = message.get("status")
        if not isinstance(status, str):
            raise InvalidField("is required: the new status", field="status")
        reason = message.get("reason")
        if reason is not None and not isinstance(reason, str):
            raise InvalidField("must be a string", field="reason")
        return StatusReport(status, reason, _int(message, "assignment_id", required=False), _sent(message, now))
    if kind == "position":
        lat = _number(message, "lat", -90, 90)
        lon = _number(message, "lon", -180, 180)
        accuracy = None if message.get("accuracy") is None else _number(message, "accuracy", 0, 100_000)
        return PositionReport(lat, lon, accuracy, _time(message.get("at"), now))
    if kind == "vitals":
        return _vitals(message, now)
    if kind == "destination":
        facility = message.get("facility")
        if not isinstance(facility, str) or not 1 <= len(facility) <= 64:
            raise InvalidField("is required: a hospital code", field="facility")
        return DestinationReport(_text(message, "incident_id"), facility, _report_id(message, now))
    if kind == "handover":
        return HandoverReport(_text(message, "incident_id"), _sent(message, now))
    return Ping()


def _report_id(message: dict[str, Any], now: dt.datetime) -> str:
    report_id = _sent(message, now).report_id
    if report_id is None:
        raise InvalidField("is required: the key that makes a resent report count once", field="report_id")
    return report_id


def _vitals(message: dict[str, Any], now: dt.datetime) -> VitalsReport:
    report_id = _report_id(message, now)
    signs, patient = message.get("vitals"), message.get("patient")
    if not isinstance(signs, dict):
        raise InvalidField("is required: an object of signs", field="vitals")
    if patient is not None and not isinstance(patient, dict):
        raise InvalidField("must be an object with age and sex", field="patient")
    try:
        return VitalsReport(_text(message, "incident_id"), parse_vitals(signs, now),
                            None if not patient else parse_patient(patient), report_id)
    except InvalidInput as exc:
        raise InvalidField(exc.message, field=exc.field) from None


def _text(message: dict[str, Any], key: str) -> str:
    value = message.get(key)
    if not isinstance(value, str) or not 1 <= len(value) <= 64:
        raise InvalidField("is required: an id", field=key)
    return value


def _int(message: dict[str, Any], key: str, *, required: bool) -> Any:
    value = message.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidField("must be a positive integer", field=key)
    return value


def _number(message: dict[str, Any], key: str, low: float, high: float) -> float:
    value = message.get(key)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or not low <= value <= high:
        raise InvalidField(f"must be a number from {low} to {high}", field=key)
    return float(value)


def _sent(message: dict[str, Any], now: dt.datetime) -> Sent:
    report_id = message.get("report_id")
    if report_id is not None and not (isinstance(report_id, str) and REPORT_ID.match(report_id)):
        raise InvalidField("must be 8 to 64 letters, digits, '-' or '_'", field="report_id")
    raw = message.get("reported_at")
    return Sent(report_id, None if raw is None else _time(raw, now, "reported_at", MAX_REPORT_AGE))


def _time(value: object, now: dt.datetime, field: str = "at", max_age: dt.timedelta = MAX_FIX_AGE) -> dt.datetime:
    if value is None:
        return now
    if not isinstance(value, str):
        raise InvalidField("must be an ISO 8601 time with a zone", field=field)
    try:
        at = dt.datetime.fromisoformat(value)
    except ValueError:
        raise InvalidField("must be an ISO 8601 time with a zone", field=field) from None
    if at.tzinfo is None:
        raise InvalidField("must carry a time zone", field=field)
    if not now - max_age <= at <= now + MAX_CLOCK_SKEW:
        raise InvalidField("is too far from the server's clock", field=field)
    return at
