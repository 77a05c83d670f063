"""The login page sends each role to its page, and a page refuses a role it is not for."""

from __future__ import annotations

from playwright.async_api import expect

from tests.e2e.conftest import CONSOLE, PHONE, Pages


async def test_each_role_lands_on_its_page(pages: Pages) -> None:
    admin = await pages.login(await pages.context(CONSOLE), "admin", "demo119", "/operator.html")
    await expect(admin.locator("body")).to_have_attribute("data-ready", "true")

    # An operator who opens the field page is sent back to the console; logging out ends the session.
    operator = await pages.login(await pages.context(CONSOLE), "operator", "demo119", "/operator.html")
    await operator.goto(pages.url("/field.html"))
    await operator.wait_for_url("**/operator.html")
    await operator.click("#logout")
    await operator.wait_for_url("**/index.html")
    await operator.goto(pages.url("/operator.html"))
    await operator.wait_for_url("**/index.html?next=%2Foperator.html")

    # Roles whose pages come later are told so, and stay on the login page.
    page = await pages.page(await pages.context(PHONE))
    await page.goto(pages.url("/"))
    await page.fill("#username", "puskesmas")
    await page.fill("#password", "demo119")
    await page.click("#login-form button[type=submit]")
    await expect(page.locator("#login-error")).to_contain_text("puskesmas")
