"""A page whose session ends elsewhere (a logout from another tab, the API or an administrator) says
"signed out", goes to the login page and never reconnects with the dead token."""

from __future__ import annotations

from playwright.async_api import Page, WebSocket, expect

from tests.conftest import Api
from tests.e2e.conftest import CONSOLE, PHONE, Pages


async def signed_in(pages: Pages, viewport: dict[str, int], username: str, lands_on: str) -> tuple[Page, list[WebSocket]]:
    """A page online on its live socket, and every websocket it opens from now on."""
    context = await pages.context(viewport)
    page = await pages.page(context)
    sockets: list[WebSocket] = []
    page.on("websocket", lambda ws: sockets.append(ws))
    await page.goto(pages.url("/"))
    await page.fill("#username", username)
    await page.fill("#password", "demo119")
    await page.press("#password", "Enter")
    await page.wait_for_url(f"**{lands_on}")
    await expect(page.locator("body")).to_have_attribute("data-connection", "online", timeout=15000)
    return page, sockets


async def test_a_session_ended_elsewhere_signs_the_page_out_for_good(pages: Pages, api: Api) -> None:
    phone, phone_sockets = await signed_in(pages, PHONE, "field", "/field.html")
    console, console_sockets = await signed_in(pages, CONSOLE, "operator", "/operator.html")
    assert [len(phone_sockets), len(console_sockets)] == [1, 1]

    # The crew's session is logged out through the API (as from another tab): the server closes the
    # phone's socket with 4401, and the page lands on the login page saying why.
    token = await phone.evaluate("sessionStorage.getItem('psc119.token')")
    assert (await api.call("POST", "/api/auth/logout", token))[0] == 200
    await phone.wait_for_url("**/index.html?next=%2Ffield.html&signed_out=1")
    await expect(phone.locator("#signed-out")).to_be_visible()
    await expect(phone.locator("#signed-out")).to_contain_text("keluar")
    assert await phone.evaluate("sessionStorage.getItem('psc119.token')") is None

    # The operator is logged out in a second tab of the same browser: the console follows.
    other_tab = await pages.page(console.context)
    await other_tab.goto(pages.url("/"))
    await other_tab.evaluate(
        """token => fetch('/api/auth/logout', {method: 'POST', headers: {Authorization: `Bearer ${token}`}})""",
        await console.evaluate("sessionStorage.getItem('psc119.token')"),
    )
    await console.wait_for_url("**/index.html?next=%2Foperator.html&signed_out=1")
    await expect(console.locator("#signed-out")).to_be_visible()

    # Longer than every reconnect backoff: neither page opened another socket.
    await phone.wait_for_timeout(6000)
    assert [len(phone_sockets), len(console_sockets)] == [1, 1]
