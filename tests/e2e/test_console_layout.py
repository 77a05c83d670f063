"""At 1366×768, the commonest desk screen, the call-taker sees the intake, the recommendation and the
incident's units with their destination and close controls at once, without scrolling anything."""

from __future__ import annotations

from playwright.async_api import Locator, Page, expect

from tests.e2e.conftest import Pages, screenshot
from tests.e2e.test_console_actions import take_call

DESK = {"width": 1366, "height": 768}


async def fully_visible(page: Page, locator: Locator) -> None:
    """Inside the viewport and inside every scrolling box around it, with nothing scrolled."""
    box = await locator.bounding_box()
    assert box is not None, locator
    assert box["x"] >= 0 and box["y"] >= 0, (locator, box)
    assert box["x"] + box["width"] <= DESK["width"] and box["y"] + box["height"] <= DESK["height"], (locator, box)
    clipped = await locator.evaluate(
        """(el) => {
            const r = el.getBoundingClientRect();
            for (let p = el.parentElement; p; p = p.parentElement) {
                const s = getComputedStyle(p);
                if (!/(auto|scroll|hidden)/.test(s.overflowY + s.overflowX)) continue;
                const b = p.getBoundingClientRect();
                if (p.scrollTop || p.scrollLeft || r.top < b.top - 0.5 || r.bottom > b.bottom + 0.5
                    || r.left < b.left - 0.5 || r.right > b.right + 0.5) return p.className || p.tagName;
            }
            return null;
        }"""
    )
    assert clipped is None, (locator, clipped)


async def test_intake_recommendation_and_units_fit_a_1366x768_screen(pages: Pages) -> None:
    console = await pages.login(await pages.context(DESK), "operator", "demo119", "/operator.html")
    await expect(console.locator("body")).to_have_attribute("data-ready", "true")
    await take_call(console)
    rows = console.locator("#recommendations tr[data-unit-id]")
    await expect(rows).to_have_count(5)
    for i in range(5):
        await fully_visible(console, rows.nth(i).locator("button.dispatch"))
    unit_id = await rows.first.get_attribute("data-unit-id")
    await rows.first.locator("button.dispatch").click()
    serving = console.locator(f"#serving li[data-unit-id='{unit_id}']")
    await expect(serving).to_have_attribute("data-status", "dispatched")
    # The sent unit keeps its row, marked sent (a repeated key must not reach the next unit).
    await expect(console.locator(f"#recommendations tr.sent[data-unit-id='{unit_id}']")).to_have_count(1)
    await screenshot(console, "console-1366x768")

    assert await console.evaluate("document.scrollingElement.scrollTop") == 0
    for selector in ["#f-phone", "#f-call-type", "#f-kelurahan", "#f-notes", "#intake-submit", "#intake-new"]:
        await fully_visible(console, console.locator(selector))
    assert await rows.count() >= 4
    for i in range(await rows.count()):
        await fully_visible(console, rows.nth(i))
    for control in [serving, serving.locator("button.withdraw"), console.locator("#result-priority"),
                    console.locator("#destination"), console.locator("#set-destination"),
                    console.locator("#close-outcome"), console.locator("#close-incident"), console.locator("#show-timeline"),
                    console.locator("#map"), console.locator("#incident-board tr.incident-row"),
                    console.locator("#unit-board li").first, console.locator("#unit-board li .status-chip").nth(1)]:
        await fully_visible(console, control)
