"""Shared fixtures for the pure signaling tests: no event loop, no database.

Test modules take these as fixtures and define their own constants.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from signaling.consult import Consult, ServiceType
from signaling.ids import ConsultId, UserId
from signaling.patient import PatientSummary, Sex, VitalSigns
from signaling.specialty import Specialty
from signaling.urgency import Urgency

#: A Monday morning in Tangerang Selatan (09:00 WIB), as UTC.
T0 = datetime(2025, 3, 3, 2, 0, tzinfo=UTC)

REQUESTER = UserId("dr-ani-pkm-pamulang")
SPECIALIST = UserId("dr-budi-sppd")
RECORDER = UserId("svc-recorder")

SDP_OFFER = (
    "v=0\r\n"
    "o=- 3912345678 3912345678 IN IP4 0.0.0.0\r\n"
    "s=-\r\n"
    "t=0 0\r\n"
    "a=group:BUNDLE 0\r\n"
    "a=msid-semantic:WMS *\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 97\r\n"
    "c=IN IP4 0.0.0.0\r\n"
    "a=sendrecv\r\n"
    "a=mid:0\r\n"
    "a=rtpmap:97 VP8/90000\r\n"
    "a=ice-ufrag:Abcd\r\n"
    "a=ice-pwd:0123456789abcdef012345\r\n"
    "a=fingerprint:sha-256 6B:8B:5D:EA:59:04:20:23:29:C8:87:1C:CC:87:32:BE\r\n"
    "a=setup:actpass\r\n"
)



@pytest.fixture
def sdp_offer() -> str:
    return SDP_OFFER


@pytest.fixture
def patient() -> PatientSummary:
    return PatientSummary(
        age=54,
        sex=Sex.FEMALE,
        chief_complaint="Nyeri dada kiri sejak 2 jam",
        question="Apakah perlu rujuk segera? EKG terlampir.",
        vitals=VitalSigns(systolic_bp=150, diastolic_bp=95, heart_rate=104, spo2=95),
    )


@pytest.fixture
def make_consult(patient: PatientSummary) -> Callable[..., Consult]:
    def make(
        id: str = "c-1",
        urgency: Urgency = Urgency.URGENT,
        specialty: Specialty = Specialty.JANTUNG,
        at: datetime = T0,
        **changes: Any,
    ) -> Consult:
        consult = Consult.request(
            id=ConsultId(id),
            requester=REQUESTER,
            specialty=specialty,
            service=ServiceType.TELE_EKG,
            urgency=urgency,
            patient=patient,
            now=at,
        )
        return replace(consult, **changes) if changes else consult

    return make
