"""The page's link rules (`web/js/room_quality.js`) in Chromium, fed receiver reports and frame rates on a clock of
the test's own: a report read at several looks counts once, and a slow sender's picture is not taken for a bad link."""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import CONSOLE, Pages

# Runs `looks` (one look a second) through a RoomQuality; returns the mode it sends after each look.
DRIVE = """async ({looks, videoAllowed}) => {
  const {RoomQuality} = await import("/js/room_quality.js");
  let now = 1000;
  performance.now = () => now * 1000;
  const quality = new RoomQuality({send: () => true, peer: null}, {min_fps: 10}, () => {});
  quality.allowVideo(videoAllowed);
  const modes = [];
  let audioPackets = 0, encoded = 0;
  for (const look of looks) {
    now += 1;
    audioPackets += 50;
    encoded += look.encoded ?? 0;
    if (look.fps !== undefined) quality.remote({type: "quality", mode: "video", fps: look.fps});
    const stats = new Map([
      ["a", {type: "inbound-rtp", kind: "audio", packetsReceived: audioPackets}],
      ["v", {type: "outbound-rtp", kind: "video", framesEncoded: encoded}],
    ]);
    if (look.report) stats.set("r", {type: "remote-inbound-rtp", kind: "audio", fractionLost: look.report.lost, reportsReceived: look.report.n});
    await quality.step({connectionState: "connected", getStats: async () => stats, getSenders: () => []});
    modes.push(quality.sending);
  }
  return modes;
}"""


async def drive(pages: Pages, looks: list[dict[str, Any]], video_allowed: bool = True) -> list[str]:
    page = await pages.page(await pages.context(CONSOLE))
    await page.goto(pages.url("/"))
    return list(await page.evaluate(DRIVE, {"looks": looks, "videoAllowed": video_allowed}))


async def test_one_lossy_audio_report_read_at_several_looks_is_not_two(pages: Pages) -> None:
    # Audio only (chosen), then one report of 50 % lost, which the next reports take four seconds to replace.
    looks = [{"report": {"n": 1, "lost": 0.5}}] * 4 + [{"report": {"n": 2, "lost": 0.5}}]
    assert await drive(pages, looks, video_allowed=False) == ["audio_only"] * 4 + ["text_only"]


async def test_a_slow_sender_whose_frames_all_arrive_keeps_video(pages: Pages) -> None:
    slow = [{"encoded": 6, "fps": 6}] * 12  # the CPU encodes 6 frames a second and the other side decodes all 6
    assert await drive(pages, slow) == ["video"] * 12
    lost = [{"encoded": 25, "fps": 6}] * 12  # 6 of 25 arrive: the link loses them
    assert "audio_only" in await drive(pages, lost)
