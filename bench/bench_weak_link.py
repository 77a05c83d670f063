"""Benchmark: a consult's video over clean, 3G-like and 2G-like links.

The real app (a migrated embedded PostgreSQL with the demo users) hands out TURN credentials for a real coturn
behind the tests' UDP relay (`tests.impair.udp.UdpRelay`), and every peer connects relay-only, so all media crosses
the impaired links. Media between two peers crosses two links (one each), so a path's figures are split between them:

    clean   no delay, no loss, no rate limit
    3G      300 kbit/s, 150 ms each way, 2 % loss  (links: 75 ms, 1 %)
    2G      100 kbit/s, 300 ms each way, 5 % loss  (links: 150 ms, 2.5 %)

For two aiortc peers (busy 320x240 pictures both ways, adapting) and for Chromium's page with an aiortc kiosk, it
reports join → first decoded frame (seconds), the video frames a second delivered in each direction over a window after
the senders settled, and the mode each sender ended in. The clean link is the baseline of the ratios. Prints a table,
then one JSON line of its rows (`results()` gives them to a runner). Asserts no timings.

    unshare -n sh -c 'ip link set lo up && exec .venv/bin/python bench/bench_weak_link.py [--settle 10] [--window 10]'
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.bench_support import demo_database  # noqa: E402
from bench.results import Row, emit  # noqa: E402
from signaling.bandwidth import Mode  # noqa: E402
from signaling.media import SyntheticSource  # noqa: E402
from signaling.peer import ConsultPeer  # noqa: E402
from tests.conftest import Api, app_config, start_api  # noqa: E402
from tests.impair.turn_link import TurnLink, start_turn_link  # noqa: E402
from tests.server.test_consults import accepted_consult  # noqa: E402

LINKS: dict[str, dict[str, Any]] = {
    "clean": {"delay_s": 0.0, "loss": 0.0, "rate_bps": None},
    "3G": {"delay_s": 0.075, "loss": 0.01, "rate_bps": 300_000},
    "2G": {"delay_s": 0.15, "loss": 0.025, "rate_bps": 100_000},
}
LOOPBACK = ["127.0.0.1"]
FRAMES = """async () => {
  const pc = window.__room && window.__room.pc;
  let frames = 0;
  if (pc) (await pc.getStats()).forEach((s) => { if (s.type === "inbound-rtp" && s.kind === "video") frames = s.framesDecoded || 0; });
  return frames;
}"""

_ROWS: list[dict[str, Any]] = []


def results() -> list[dict[str, Any]]:
    """The rows of the last run (run `main` first)."""
    return list(_ROWS)


async def join_tokens(api: Api) -> tuple[str, dict[str, Any], dict[str, Any]]:
    consult_id, pk, sp = await accepted_consult(api)
    joins = []
    for token in (pk, sp):
        status, body = await api.call("POST", f"/api/consults/{consult_id}/join", token)
        assert status == 200, body
        joins.append(body)
    return consult_id, joins[0], joins[1]


def peer(api: Api, join: dict[str, Any]) -> ConsultPeer:
    return ConsultPeer(api.url(join["room_url"]).replace("http://", "ws://"), join["token"],
                       source=SyntheticSource(320, 240, busy=True), ice_host_addresses=LOOPBACK, relay_only=True)


async def first_frame(received: Any, started: float, timeout: float = 60) -> float | None:
    deadline = started + timeout
    while time.monotonic() < deadline:
        if await received() > 0:
            return time.monotonic() - started
        await asyncio.sleep(0.02)
    return None


async def two_aiortc_peers(api: Api, link: str, settle: float, window: float) -> dict[str, Any]:
    _, pk_join, sp_join = await join_tokens(api)
    ani, budi = peer(api, pk_join), peer(api, sp_join)
    pk, sp = str(pk_join["member"]), str(sp_join["member"])
    started = time.monotonic()
    tasks = [asyncio.create_task(p.run()) for p in (ani, budi)]

    async def frames() -> int:
        return budi.stats.video_from(pk)

    try:
        first = await first_frame(frames, started)
        await asyncio.sleep(settle)
        a, b, t = budi.stats.video_from(pk), ani.stats.video_from(sp), time.monotonic()
        await asyncio.sleep(window)
        elapsed = time.monotonic() - t
        return {
            "pair": "aiortc-aiortc", "link": link, "first_frame_s": first,
            "fps_a_to_b": (budi.stats.video_from(pk) - a) / elapsed, "fps_b_to_a": (ani.stats.video_from(sp) - b) / elapsed,
            "mode_a": ani.sending_modes.get(sp, Mode.VIDEO).value,  # type: ignore[call-overload]
            "mode_b": budi.sending_modes.get(pk, Mode.VIDEO).value,  # type: ignore[call-overload]
        }
    finally:
        for p in (ani, budi):
            await p.stop()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 20)


async def chromium_and_aiortc(api: Api, link: str, settle: float, window: float) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    from tests.e2e.conftest import CHROMIUM, CHROMIUM_FLAGS

    consult_id, pk_join, _ = await join_tokens(api)
    kiosk = peer(api, pk_join)
    task = asyncio.create_task(kiosk.run())
    try:
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
            page = await (await browser.new_context()).new_page()
            await page.goto(api.url("/"))
            await page.fill("#username", "specialist")
            await page.fill("#password", "demo119")
            await page.press("#password", "Enter")
            await page.wait_for_url("**/specialist.html")
            await page.click(f"#my-consults button[data-consult-id='{consult_id}']")
            started = time.monotonic()
            await page.click("#join-room")

            async def frames() -> int:
                return int(await page.evaluate(FRAMES))

            first = await first_frame(frames, started)
            await asyncio.sleep(settle)
            specialist = str(await page.evaluate("String(window.__room.me.user)"))
            a, b, t = await frames(), kiosk.stats.video_from(specialist), time.monotonic()
            await asyncio.sleep(window)
            elapsed = time.monotonic() - t
            mode = page.locator("#room-mode")
            row = {
                "pair": "aiortc-chromium", "link": link, "first_frame_s": first,
                "fps_a_to_b": (await frames() - a) / elapsed, "fps_b_to_a": (kiosk.stats.video_from(specialist) - b) / elapsed,
                "mode_a": await mode.get_attribute("data-receiving") or "video",
                "mode_b": await mode.get_attribute("data-sending") or "video",
            }
            await browser.close()
            return row
    finally:
        await kiosk.stop()
        await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 20)


async def main(settle: float, window: float, pairs: list[str]) -> list[dict[str, Any]]:
    async with demo_database("psc119-bench-weak-") as (root, dsn):
        turn_dir = Path(tempfile.mkdtemp(prefix="psc119-turn-", dir=root))
        turn: TurnLink = await start_turn_link(turn_dir)
        config = dataclasses.replace(app_config(dsn), ice=dataclasses.replace(turn.ice, relay_only=True))
        api = await start_api(dsn, config)
        try:
            for pair in pairs:
                for link, settings in LINKS.items():
                    turn.relay.impair(**settings)
                    run = two_aiortc_peers if pair == "aiortc-aiortc" else chromium_and_aiortc
                    _ROWS.append(await run(api, link, settle, window))
        finally:
            await api.session.close()
            await api.server.close()
            await turn.close()
            shutil.rmtree(turn_dir, ignore_errors=True)
    return results()


def runner_rows(rows: list[dict[str, Any]]) -> list[Row]:
    """The weak links' figures against the same pair's on the clean link, for `bench/run.py`."""
    found = []
    for row in rows:
        if row["link"] == "clean":
            continue
        base = next(r for r in rows if r["pair"] == row["pair"] and r["link"] == "clean")
        baseline = f"{row['pair']}, clean link"
        found.append(Row(f"{row['pair']} over {row['link']}: join → first frame", row["first_frame_s"], base["first_frame_s"], baseline, "s"))
        found.append(Row(f"{row['pair']} over {row['link']}: video a→b", row["fps_a_to_b"], base["fps_a_to_b"], baseline, "frames/s",
                         note=f"modes {row['mode_a']}/{row['mode_b']}"))
    return found


def table(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'pair':16} {'link':6} {'join→frame s':>12} {'fps a→b':>8} {'fps b→a':>8} {'ratio a→b':>9} {'mode a':>10} {'mode b':>10}"]
    for row in rows:
        base = next(r for r in rows if r["pair"] == row["pair"] and r["link"] == "clean")
        ratio = row["fps_a_to_b"] / base["fps_a_to_b"] if base["fps_a_to_b"] else float("nan")
        first = "never" if row["first_frame_s"] is None else f"{row['first_frame_s']:.2f}"
        lines.append(
            f"{row['pair']:16} {row['link']:6} {first:>12} {row['fps_a_to_b']:8.1f} {row['fps_b_to_a']:8.1f} "
            f"{ratio:9.2f} {row['mode_a']:>10} {row['mode_b']:>10}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settle", type=float, default=10.0, help="seconds after the first frame before measuring")
    parser.add_argument("--window", type=float, default=10.0, help="seconds of measurement")
    parser.add_argument("--pairs", nargs="+", default=["aiortc-aiortc", "aiortc-chromium"], choices=["aiortc-aiortc", "aiortc-chromium"])
    args = parser.parse_args()
    rows = asyncio.run(main(args.settle, args.window, args.pairs))
    print(table(rows))
    print(json.dumps(rows))
    emit(*runner_rows(rows))
