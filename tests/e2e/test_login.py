"""The login page sends each role to its page, and a page refuses a role it is not for."""

from __future__ import annotations

from playwright.async_api import expect

from tests.e2e.conftest import CONSOLE, PHONE, Pages


async def test_each_role_lands_on_its_page(pages: Pages) -> None:
    # The administrator lands on the administration page and may open the operator console from it.
    admin = await pages.login(await pages.context(CONSOLE), "admin", "demo119", "/admin.html")
    await expect(admin.locator("body")).to_have_attribute("data-ready", "true")
    await admin.click("a[href='/operator.html']")
    await admin.wait_for_url("**/operator.html")
    await expect(admin.locator("body")).to_have_attribute("data-ready", "true")

    # An operator who opens the field page is sent back to the console; logging out ends the session.
    operator = await pages.login(await pages.context(CONSOLE), "operator", "demo119", "/operator.html")
    await operator.goto(pages.url("/field.html"))
    await operator.wait_for_url("**/operator.html")
    await operator.click("#logout")
    await operator.wait_for_url("**/index.html")
    await operator.goto(pages.url("/operator.html"))
    await operator.wait_for_url("**/index.html?next=%2Foperator.html")

    # The doctors and the hospital's emergency department have their own pages.
    await pages.login(await pages.context(PHONE), "puskesmas", "demo119", "/puskesmas.html")
    await pages.login(await pages.context(CONSOLE), "specialist", "demo119", "/specialist.html")
    hospital = await pages.login(await pages.context(CONSOLE), "hospital", "demo119", "/hospital.html")
    await expect(hospital.locator("#facility-name")).to_have_text("RSU Kota Tangerang Selatan")
