"""How a connection's link is sampled: each receiver report counts once, and our own frame rate goes with the other
side's."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiortc.stats import RTCRemoteInboundRtpStreamStats

from signaling.bandwidth import AdaptPolicy, LinkSample, Mode
from signaling.link_quality import AdaptOptions, LinkQuality


def report(kind: str, fraction_lost: float, arrived: datetime) -> RTCRemoteInboundRtpStreamStats:
    """A receiver report as aiortc's sender keeps it (stamped when it arrived)."""
    return RTCRemoteInboundRtpStreamStats(
        timestamp=arrived, type="remote-inbound-rtp", id=f"remote-inbound-rtp_{kind}", ssrc=1, kind=kind,
        transportId="t", packetsReceived=100, packetsLost=0, jitter=0, roundTripTime=0.1,
        fractionLost=int(fraction_lost * 256),
    )  # fmt: skip


@dataclass
class Sender:
    """What `LinkQuality` reads of a sender: its kind, a track, and the last report of each kind it keeps."""

    kind: str
    reports: dict[str, RTCRemoteInboundRtpStreamStats] = field(default_factory=dict)
    track: object = object()

    async def getStats(self) -> dict[str, Any]:  # noqa: N802 (aiortc's name)
        return dict(self.reports)


@dataclass
class Connection:
    senders: list[Sender]
    connectionState: str = "connected"  # noqa: N815 (aiortc's name)

    def getSenders(self) -> list[Sender]:  # noqa: N802
        return self.senders

    def getTransceivers(self) -> list[Any]:  # noqa: N802
        return []


async def test_a_report_is_read_once_however_many_samples_come_before_the_next() -> None:
    audio = Sender("audio")
    quality = LinkQuality(AdaptOptions(AdaptPolicy(), interval=0.02), lambda mode, reason: None)
    quality.negotiated(Connection([audio]))  # type: ignore[arg-type]
    try:
        audio.reports["a"] = report("audio", 0.5, datetime.now(UTC))
        while len(quality.samples) < 5:  # one report of heavy loss, then none for four samples
            await asyncio.sleep(0.01)
        samples: list[LinkSample] = [sample for sample, _, _ in quality.samples]
        assert [s.audio_loss for s in samples[:5]] == [0.5, None, None, None, None]
        assert quality.mode is not Mode.TEXT_ONLY  # one lossy report is not two
        audio.reports["a"] = report("audio", 0.0, datetime.now(UTC) + timedelta(milliseconds=1))
        count = len(quality.samples)
        while len(quality.samples) < count + 2:
            await asyncio.sleep(0.01)
        assert [s.audio_loss for s, _, _ in quality.samples[count:count + 2]] == [0.0, None]
    finally:
        quality.close()
