"""How much video a consult peer sends over the link it has: the send-side controller.

A puskesmas on a 3G bearer may have 300 kbit/s with 150 ms each way and a few percent
loss. aiortc's own sender follows the receiver's REMB estimate, which on such a link stays
far above what gets through, and its VP8 encoder never goes below 250 kbit/s nor changes
resolution: the picture stops altogether. This controller decides instead, once per
sample of the link (receiver reports every second or so):

* **bitrate**: loss- and delay-based, after the loss-based half of WebRTC's congestion
  control: above 10 % loss the rate drops by half the loss; a round-trip time well above
  the lowest of the last half minute means a queue is building in front of the bottleneck
  (half of what a 3G bearer buffers), and the rate drops by 15 %; with little loss and no queue it grows 8 % a step, never beyond ``max_bitrate``
  nor the receiver's REMB;
* **resolution**: `scale_for` picks the largest picture the bitrate can fill at a useful
  quality (width and height divided by 1, 2, 4 or 8); `scale_after` goes to a smaller one at
  once but to a larger one only with ``UPSIZE_MARGIN`` to spare, so a bitrate probing at a
  step's edge does not switch sizes (each switch a keyframe) on a link with no room for them;
* **mode**: video falls back to audio only when the bitrate drops below ``min_bitrate`` or
  the other side reports decoding fewer than ``min_fps`` frames a second (and well below
  what we encode: a slow sender's CPU is not a bad link) for ``fps_grace`` seconds; from
  audio only it tries video again after ``probe_after`` seconds of a calm link (doubling
  after each failed try, up to ``probe_max``). Audio losing more than ``text_loss`` while
  video is sent halves the video (it is what fills the link); when audio alone still
  loses that much in two reports in a row, or no receiver report comes for
  ``silence_after`` seconds, the consult is ``text_only``: it continues in writing.

Each receiver report counts once: a sample carries only the reports that arrived since the
previous one.

Pure: samples come in with their own time (seconds on any monotonic clock).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .errors import InvalidValue

__all__ = ["AdaptPolicy", "BandwidthController", "Decision", "LinkSample", "Mode", "scale_after", "scale_for"]

#: Bits per pixel a VP8 picture needs to be worth looking at (below: a smaller picture).
BITS_PER_PIXEL = 0.1
SCALES = (1, 2, 4, 8)
MIN_SIDE = 40  # pixels: no smaller picture than this
#: A larger picture once the bitrate fills it with this much to spare (at 1.3, 320x240 at 30 frames/s needs
#: 300 kbit/s, the whole of a 3G bearer: its video stays 160x120 instead of flipping up and back down).
UPSIZE_MARGIN = 1.3


class Mode(StrEnum):
    VIDEO = "video"
    AUDIO_ONLY = "audio_only"
    TEXT_ONLY = "text_only"


@dataclass(frozen=True, slots=True)
class AdaptPolicy:
    """Limits of the controller; bitrates are the video's, in bit/s."""

    max_bitrate: int = 1_500_000
    start_bitrate: int = 200_000
    min_bitrate: int = 50_000
    min_fps: float = 10.0
    fps_grace: float = 4.0
    probe_after: float = 5.0
    probe_max: float = 40.0
    text_loss: float = 0.25
    silence_after: float = 6.0

    def __post_init__(self) -> None:
        if not 10_000 <= self.min_bitrate <= self.max_bitrate:
            raise InvalidValue("min_bitrate", "must be at least 10000 and at most max_bitrate")
        if not self.min_bitrate <= self.start_bitrate:
            raise InvalidValue("start_bitrate", "must be at least min_bitrate")
        if not 1 <= self.min_fps <= 30:
            raise InvalidValue("min_fps", "must be in 1..30")
        for name in ("fps_grace", "probe_after", "silence_after"):
            if not 0 < getattr(self, name) <= 600:
                raise InvalidValue(name, "must be in 0..600 seconds")
        if not self.probe_after <= self.probe_max <= 3600:
            raise InvalidValue("probe_max", "must be at least probe_after and at most 3600")
        if not 0 < self.text_loss < 1:
            raise InvalidValue("text_loss", "must be between 0 and 1")


@dataclass(frozen=True, slots=True)
class LinkSample:
    """What the sender knows of the link at ``at``.

    ``loss``/``audio_loss``/``rtt`` come from the receiver reports that arrived since the
    previous sample, None when none did: a report arrives every 1 to 5 s (audio's come
    seldom), and one report read at every sample would count one burst of loss many times.
    ``loss``/``audio_loss``: the share of our packets (all, and audio) the receiver lost
    since its previous report; ``rtt``: seconds; ``remb``: the receiver's estimate;
    ``remote_fps``: the frames a second the other side says it decodes from us;
    ``sent_fps``: the frames a second we encoded lately (None: not known);
    ``feedback_age``: seconds since the last receiver report arrived.
    """

    at: float
    loss: float | None = None
    audio_loss: float | None = None
    rtt: float | None = None
    remb: int | None = None
    remote_fps: float | None = None
    sent_fps: float | None = None
    feedback_age: float = 0.0


@dataclass(frozen=True, slots=True)
class Decision:
    mode: Mode
    bitrate: int  # the video encoder's target (0: no video)


def scale_for(bitrate: int, width: int, height: int, fps: float) -> int:
    """By how much to divide width and height so ``bitrate`` fills the picture."""
    best = 1
    for scale in SCALES:
        if min(width, height) // scale < MIN_SIDE:
            break
        best = scale
        if bitrate >= BITS_PER_PIXEL * fps * (width // scale) * (height // scale):
            return scale
    return best


def scale_after(current: int | None, bitrate: int, width: int, height: int, fps: float) -> int:
    """The scale to send at, from ``current`` (None: nothing sent yet): smaller as soon as the
    bitrate cannot fill the picture, larger only once it fills the larger one with ``UPSIZE_MARGIN``."""
    wanted = scale_for(bitrate, width, height, fps)
    if current is None or wanted >= current:
        return wanted
    return min(current, scale_for(int(bitrate / UPSIZE_MARGIN), width, height, fps))


class BandwidthController:
    LOSS_HIGH = 0.10
    LOSS_LOW = 0.05
    QUEUE_RTT = 0.25  # seconds above the lowest round trip: a queue is building
    RTT_WINDOW = 30.0  # seconds the lowest round trip is remembered
    GROW = 1.08
    HOLD_AFTER_DROP = 2.0  # seconds without growth after a drop
    STEADY = 20.0  # seconds of video after which a probe counts as a success
    DELIVERED = 0.7  # share of our encoded frames the other side decodes on a link that carries them

    def __init__(self, policy: AdaptPolicy, *, start: float, video: bool = True) -> None:
        self.policy = policy
        self.mode = Mode.VIDEO if video else Mode.AUDIO_ONLY
        self.bitrate = min(policy.start_bitrate, policy.max_bitrate)
        self._video_since = start
        self._dropped_at = start - self.HOLD_AFTER_DROP
        self._low_fps_since: float | None = None
        self._rtts: list[tuple[float, float]] = []  # (at, rtt) of the last RTT_WINDOW
        self._probe_wait = policy.probe_after
        self._probe_at = start + policy.probe_after
        self._video_allowed = video
        self._loss = 0.0  # of the last receiver report
        self._audio_loss = 0.0  # of the last audio receiver report
        self._audio_lossy = 0  # consecutive audio reports losing more than text_loss
        self.reason = "start"

    @property
    def decision(self) -> Decision:
        return Decision(self.mode, self.bitrate if self.mode is Mode.VIDEO else 0)

    def update(self, s: LinkSample) -> Decision:
        p = self.policy
        if s.loss is not None:
            self._loss = s.loss
        queued = False
        if s.rtt is not None and s.rtt > 0:  # a report may come before its clock makes sense
            self._rtts = [(at, rtt) for at, rtt in self._rtts if s.at - at <= self.RTT_WINDOW] + [(s.at, s.rtt)]
            queued = s.rtt - min(rtt for _, rtt in self._rtts) > self.QUEUE_RTT
        audio_lossy = s.audio_loss is not None and s.audio_loss > p.text_loss
        if s.audio_loss is not None:  # counted once per audio report, however long until the next one
            self._audio_loss = s.audio_loss
            self._audio_lossy = self._audio_lossy + 1 if audio_lossy else 0
        silent = s.feedback_age > p.silence_after
        if silent or (self.mode is not Mode.VIDEO and self._audio_lossy >= 2):
            if self.mode is not Mode.TEXT_ONLY:
                self._fall_back(s.at, Mode.TEXT_ONLY, "no receiver report" if silent else f"audio loss {self._audio_loss:.0%}")
            return self.decision
        if self.mode is Mode.TEXT_ONLY:
            if not self._audio_lossy:
                self._fall_back(s.at, Mode.AUDIO_ONLY, "the link answers again")
            return self.decision
        if self.mode is Mode.AUDIO_ONLY:
            calm = self._loss <= self.LOSS_HIGH and not queued
            if self._video_allowed and calm and s.at >= self._probe_at:
                self.mode = Mode.VIDEO
                self.bitrate = min(p.max_bitrate, max(p.min_bitrate * 2, self.bitrate))
                self._video_since = s.at
                self._low_fps_since = None
                self.reason = "probing video"
            return self.decision
        # Video: loss moves the rate only when a report says it (None: no new report).
        loss = s.loss
        if (loss is not None and loss > self.LOSS_HIGH) or queued or audio_lossy:
            factor = min(
                1 - 0.5 * loss if loss is not None and loss > self.LOSS_HIGH else 1.0,
                0.85 if queued else 1.0,
                0.5 if audio_lossy else 1.0,
            )
            self.bitrate = int(self.bitrate * factor)
            self._dropped_at = s.at
        elif loss is not None and loss < self.LOSS_LOW and s.at - self._dropped_at >= self.HOLD_AFTER_DROP:
            self.bitrate = int(self.bitrate * self.GROW) + 5_000
        # The receiver's REMB caps the rate, but aiortc's estimator drops far below what the
        # link carries when a queue jitters: near the floor only loss and delay decide.
        remb = max(s.remb, 2 * p.min_bitrate) if s.remb else p.max_bitrate
        self.bitrate = min(self.bitrate, p.max_bitrate, remb)
        if s.remote_fps is not None and self._link_loses_frames(s) and s.at - self._video_since >= p.fps_grace:
            self._low_fps_since = s.at if self._low_fps_since is None else self._low_fps_since
        elif s.remote_fps is not None:
            self._low_fps_since = None
        if self.bitrate < p.min_bitrate:
            self._fall_back(s.at, Mode.AUDIO_ONLY, f"video bitrate {self.bitrate} below {p.min_bitrate}")
        elif self._low_fps_since is not None and s.at - self._low_fps_since >= p.fps_grace:
            self._fall_back(s.at, Mode.AUDIO_ONLY, f"the other side decodes {s.remote_fps:.1f} frames/s")
        elif s.at - self._video_since >= self.STEADY:
            self._probe_wait = p.probe_after
        return self.decision

    def _link_loses_frames(self, s: LinkSample) -> bool:
        """The other side decodes too few frames, and not because we encode no more: a sender
        whose CPU makes fewer frames than ``min_fps`` has a slow picture, not a bad link, and
        audio only would not bring it back."""
        assert s.remote_fps is not None
        if s.remote_fps >= self.policy.min_fps:
            return False
        return s.sent_fps is None or s.remote_fps < self.DELIVERED * s.sent_fps

    def _fall_back(self, now: float, mode: Mode, reason: str) -> None:
        if self.mode is Mode.VIDEO and now - self._video_since < self.STEADY:
            self._probe_wait = min(self.policy.probe_max, self._probe_wait * 2)
        self.mode = mode
        self.reason = reason
        self.bitrate = max(self.policy.min_bitrate, self.bitrate)
        self._probe_at = now + self._probe_wait
        self._low_fps_since = None
