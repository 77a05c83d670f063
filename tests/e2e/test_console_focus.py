"""After the intake the first Dispatch button has the focus, and keeps it when the call's own events reach the
console only after the answer (as on a loaded machine): redrawing the list does not drop it."""

from __future__ import annotations

import json

from playwright.async_api import WebSocketRoute, expect

from tests.e2e.conftest import CONSOLE, Pages

HELD = ("call.received", "call.assessed")


class LateEvents:
    """Passes the console's socket through, holding the server's call events until ``release``."""

    def __init__(self) -> None:
        self.page: WebSocketRoute | None = None
        self.held: list[str | bytes] = []
        self.holding = True

    async def route(self, ws: WebSocketRoute) -> None:
        self.page = ws
        server = ws.connect_to_server()

        def to_page(message: str | bytes) -> None:
            if self.holding and isinstance(message, str) and json.loads(message).get("event") in HELD:
                self.held.append(message)
                return
            ws.send(message)

        server.on_message(to_page)

    def release(self) -> None:
        assert self.page is not None
        self.holding = False
        for message in self.held:
            self.page.send(message)


async def test_the_first_dispatch_button_keeps_the_focus_when_the_call_events_come_late(pages: Pages) -> None:
    context = await pages.context(CONSOLE)
    late = LateEvents()
    await context.route_web_socket("**/ws/operator*", late.route)
    console = await pages.login(context, "operator", "demo119", "/operator.html")
    await expect(console.locator("body")).to_have_attribute("data-ready", "true")
    await console.keyboard.type("0812-3456-7890")
    await console.select_option("#f-call-type", "chest_pain")
    await console.select_option("#f-kelurahan", "kel-parigi")
    await console.press("#f-phone", "Enter")
    first = console.locator("#recommendations button.dispatch").first
    await expect(first).to_be_focused()
    unit_id = await console.locator("#recommendations tr[data-unit-id]").first.get_attribute("data-unit-id")

    # The call's events arrive now, after the answer: the panel redraws its lists.
    marker = await first.evaluate("(b) => { b.dataset.before = 'yes'; return b.dataset.before; }")
    assert marker == "yes"
    assert len(late.held) == 2, late.held
    late.release()
    await expect(console.locator("#recommendations button.dispatch[data-before]")).to_have_count(0)  # drawn anew
    await expect(first).to_be_focused()
    # Enter on the focused button sends that unit.
    await console.keyboard.press("Enter")
    await expect(console.locator(f"#serving li[data-unit-id='{unit_id}']")).to_have_attribute("data-status", "dispatched")
