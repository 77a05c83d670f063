"""The send-side controller: what it does with loss, queueing delay, REMB and the other side's frame rate."""

from __future__ import annotations

import pytest

from signaling.bandwidth import AdaptPolicy, BandwidthController, LinkSample, Mode, scale_after, scale_for
from signaling.errors import InvalidValue

POLICY = AdaptPolicy(max_bitrate=1_000_000, start_bitrate=300_000, min_bitrate=50_000, probe_after=5, probe_max=20)


def run(controller: BandwidthController, start: float, seconds: int, **sample: float | int | None) -> float:
    for n in range(seconds):
        controller.update(LinkSample(at=start + n, **sample))  # type: ignore[arg-type]
    return start + seconds


def until(controller: BandwidthController, start: float, mode: Mode, **sample: float | int | None) -> float:
    """Feed one sample a second from ``start``; the time ``mode`` was reached."""
    for n in range(120):
        controller.update(LinkSample(at=start + n, **sample))  # type: ignore[arg-type]
        if controller.mode is mode:
            return start + n
    raise AssertionError(f"never {mode}")


def test_a_clean_link_grows_the_bitrate_up_to_the_maximum() -> None:
    controller = BandwidthController(POLICY, start=0)
    run(controller, 1, 60, loss=0.0, rtt=0.05)
    assert controller.decision.mode is Mode.VIDEO and controller.bitrate == 1_000_000


def test_heavy_loss_cuts_the_bitrate_until_below_the_floor_then_audio_only() -> None:
    controller = BandwidthController(POLICY, start=0)
    controller.update(LinkSample(at=1, loss=0.3, audio_loss=0.02, rtt=0.3))
    assert controller.bitrate == int(300_000 * 0.85)
    run(controller, 2, 30, loss=0.3, audio_loss=0.02, rtt=0.3)
    assert controller.decision.mode is Mode.AUDIO_ONLY and controller.decision.bitrate == 0


def test_random_loss_of_a_few_percent_holds_the_rate() -> None:
    controller = BandwidthController(POLICY, start=0)
    run(controller, 1, 20, loss=0.07, rtt=0.3)
    assert controller.bitrate == 300_000 and controller.mode is Mode.VIDEO


def test_a_growing_queue_cuts_the_rate_before_anything_is_lost() -> None:
    controller = BandwidthController(POLICY, start=0)
    run(controller, 1, 3, loss=0.0, rtt=0.3)
    before = controller.bitrate
    controller.update(LinkSample(at=10, loss=0.0, rtt=0.6))
    assert controller.bitrate == int(before * 0.85)


def test_remb_caps_the_rate_but_not_below_twice_the_floor() -> None:
    controller = BandwidthController(POLICY, start=0)
    controller.update(LinkSample(at=1, loss=0.0, rtt=0.1, remb=150_000))
    assert controller.bitrate == 150_000
    controller.update(LinkSample(at=2, loss=0.0, rtt=0.1, remb=20_000))
    assert controller.bitrate == 100_000 and controller.mode is Mode.VIDEO


def test_too_few_frames_at_the_other_side_fall_back_to_audio_after_the_grace() -> None:
    controller = BandwidthController(POLICY, start=0)
    run(controller, 1, 5, loss=0.0, rtt=0.1, remote_fps=30)
    t = run(controller, 6, 4, loss=0.0, rtt=0.1, remote_fps=4)
    assert controller.mode is Mode.VIDEO  # not yet: the grace is 4 s
    controller.update(LinkSample(at=t, loss=0.0, rtt=0.1, remote_fps=4))
    assert controller.mode is Mode.AUDIO_ONLY and "decodes 4.0" in controller.reason


def test_audio_only_probes_video_again_on_a_calm_link_and_backs_off_when_the_probe_fails() -> None:
    controller = BandwidthController(POLICY, start=0)
    fell_back = until(controller, 1, Mode.AUDIO_ONLY, loss=0.4, audio_loss=0.05, rtt=0.3)
    # Video failed within its first 20 s: the 5 s wait doubles.
    probed = until(controller, fell_back + 1, Mode.VIDEO, loss=0.02, rtt=0.3)
    assert probed == fell_back + 10 and controller.bitrate == 100_000
    fell_back = until(controller, probed + 1, Mode.AUDIO_ONLY, loss=0.4, audio_loss=0.05, rtt=0.3)
    assert until(controller, fell_back + 1, Mode.VIDEO, loss=0.02, rtt=0.3) == fell_back + 20  # at most probe_max
    # A probe waits for a calm link.
    fell_back = until(controller, fell_back + 21, Mode.AUDIO_ONLY, loss=0.4, audio_loss=0.05, rtt=0.3)
    t = run(controller, fell_back + 1, 40, loss=0.15, rtt=0.3)
    assert controller.mode is Mode.AUDIO_ONLY
    assert until(controller, t, Mode.VIDEO, loss=0.0, rtt=0.3) == t


def test_audio_that_cannot_hold_either_means_writing_and_the_link_coming_back_means_audio() -> None:
    controller = BandwidthController(POLICY, start=0)
    controller.update(LinkSample(at=1, loss=0.5, audio_loss=0.5, rtt=0.3))
    assert controller.mode is Mode.VIDEO and controller.bitrate == 150_000  # video is what fills the link: halved
    t = run(controller, 2, 6, loss=0.5, audio_loss=0.5, rtt=0.3)
    assert controller.mode is Mode.TEXT_ONLY
    controller.update(LinkSample(at=t, loss=0.02, audio_loss=0.02, rtt=0.3))
    assert controller.mode is Mode.AUDIO_ONLY


def test_a_slow_sender_that_gets_all_its_frames_through_keeps_video() -> None:
    # A starved CPU encodes 6 frames a second and the other side decodes all 6: the link is fine, audio only would not help.
    controller = BandwidthController(POLICY, start=0)
    run(controller, 1, 30, loss=0.0, rtt=0.1, remote_fps=6, sent_fps=6.5)
    assert controller.mode is Mode.VIDEO
    # The same 6 frames out of 25 encoded: the link loses them.
    assert until(controller, 31, Mode.AUDIO_ONLY, loss=0.0, rtt=0.1, remote_fps=6, sent_fps=25) == 35  # after the grace
    assert "decodes 6.0" in controller.reason


def test_no_new_report_changes_no_rate() -> None:
    controller = BandwidthController(POLICY, start=0)
    controller.update(LinkSample(at=1, loss=0.3, rtt=0.1))
    after_loss = controller.bitrate
    run(controller, 2, 5)  # no report: neither more loss nor a clean link
    assert controller.bitrate == after_loss == int(300_000 * 0.85)


def test_video_loss_is_not_taken_for_audio_loss() -> None:
    # A lost keyframe burst says nothing of the voice: without an audio report, audio only stays audio only.
    controller = BandwidthController(POLICY, start=0)
    fell_back = until(controller, 1, Mode.AUDIO_ONLY, loss=0.6, audio_loss=0.0, rtt=0.1)
    run(controller, fell_back + 1, 4, loss=0.6, rtt=0.1)
    assert controller.mode is Mode.AUDIO_ONLY


def test_writing_needs_two_lossy_audio_reports_however_many_samples_fall_between() -> None:
    controller = BandwidthController(POLICY, start=0)
    t = until(controller, 1, Mode.AUDIO_ONLY, loss=0.6, audio_loss=0.0, rtt=0.1)
    controller.update(LinkSample(at=t + 1, loss=0.3, audio_loss=0.3, rtt=0.1))
    t = run(controller, t + 2, 4)  # one report, then none for four samples
    assert controller.mode is Mode.AUDIO_ONLY
    controller.update(LinkSample(at=t, loss=0.3, audio_loss=0.3, rtt=0.1))
    assert controller.mode is Mode.TEXT_ONLY and controller.reason == "audio loss 30%"


def test_no_receiver_report_for_a_while_means_writing() -> None:
    controller = BandwidthController(POLICY, start=0)
    controller.update(LinkSample(at=1, feedback_age=7.0))
    assert controller.mode is Mode.TEXT_ONLY and controller.reason == "no receiver report"


def test_a_peer_that_sends_no_video_never_probes_it() -> None:
    controller = BandwidthController(POLICY, start=0, video=False)
    run(controller, 1, 60, loss=0.0, rtt=0.05)
    assert controller.mode is Mode.AUDIO_ONLY


@pytest.mark.parametrize(
    ("bitrate", "size", "scale"),
    [
        (1_500_000, (640, 480), 1),
        (500_000, (640, 480), 2),
        (150_000, (640, 480), 4),
        (150_000, (320, 240), 2),
        (300_000, (320, 240), 1),
        (10_000, (320, 240), 4),  # never below 40 pixels a side
    ],
)
def test_the_picture_shrinks_with_the_bitrate(bitrate: int, size: tuple[int, int], scale: int) -> None:
    assert scale_for(bitrate, *size, fps=30) == scale


def test_the_picture_shrinks_at_once_and_grows_only_with_bitrate_to_spare() -> None:
    # 320x240 at 30 frames/s needs 230 kbit/s: a rate probing just past that on a 3G bearer keeps 160x120.
    assert scale_for(240_000, 320, 240, fps=30) == 1
    assert scale_after(2, 240_000, 320, 240, fps=30) == 2
    assert scale_after(2, 300_000, 320, 240, fps=30) == 1
    assert scale_after(4, 240_000, 320, 240, fps=30) == 2  # one step up when only that one fits with room
    assert scale_after(1, 200_000, 320, 240, fps=30) == 2  # down at once
    assert scale_after(None, 240_000, 320, 240, fps=30) == 1  # the first picture: what the bitrate fills


@pytest.mark.parametrize(
    ("field", "limits"),
    [
        ("min_bitrate", {"min_bitrate": 5_000}),
        ("min_bitrate", {"min_bitrate": 600_000, "max_bitrate": 500_000}),
        ("start_bitrate", {"start_bitrate": 20_000}),
        ("min_fps", {"min_fps": 0}),
        ("probe_max", {"probe_max": 1}),
        ("text_loss", {"text_loss": 1.0}),
        ("fps_grace", {"fps_grace": 0}),
    ],
)
def test_a_policy_out_of_range_names_its_field(field: str, limits: dict[str, float]) -> None:
    with pytest.raises(InvalidValue) as error:
        AdaptPolicy(**limits)  # type: ignore[arg-type]
    assert error.value.field == field
