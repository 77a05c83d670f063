"""The server's errors reach the pages as stable codes, shown in the chosen language."""

from __future__ import annotations

from playwright.async_api import expect

from tests.conftest import Api
from tests.e2e.conftest import CONSOLE, Pages


async def test_wrong_password_and_bad_phone_are_shown_in_indonesian(pages: Pages, api: Api) -> None:
    context = await pages.context(CONSOLE)
    page = await pages.page(context)
    await page.goto(pages.url("/"))
    await expect(page.locator("html")).to_have_attribute("lang", "id")
    await page.fill("#username", "operator")
    await page.fill("#password", "wrong-password")
    await page.press("#password", "Enter")
    await expect(page.locator("#login-error")).to_have_text("Nama pengguna atau kata sandi salah.")

    console = await pages.login(context, "operator", "demo119", "/operator.html")
    await expect(console.locator("body")).to_have_attribute("data-ready", "true")
    await console.fill("#f-phone", "12")  # too short: only the server knows the rule
    await console.select_option("#f-call-type", "chest_pain")
    await console.select_option("#f-kelurahan", "kel-parigi")
    await console.press("#f-phone", "Enter")
    await expect(console.locator("#intake-error")).to_have_text("Nomor telepon: harus 3 sampai 20 angka, boleh diawali +")
    await expect(console.locator("#f-phone")).to_have_attribute("aria-invalid", "true")
    # The same refusal in English after a switch of language.
    await console.click("#lang-en")
    await console.press("#f-phone", "Enter")
    await expect(console.locator("#intake-error")).to_have_text(
        "Phone number: must be 3 to 20 digits, optionally starting with +"
    )
