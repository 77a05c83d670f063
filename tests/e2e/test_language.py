"""Bahasa Indonesia by default, English on request; both catalogues carry the same strings."""

from __future__ import annotations

import re

import asyncpg
from playwright.async_api import expect

from tests.conftest import REPO, Api
from tests.e2e.conftest import CONSOLE, PHONE, Pages, screenshot

KEY = re.compile(r'^\s*"([a-z_]+\.[a-z_.0-9]+)":', re.MULTILINE)


def test_every_string_is_in_both_catalogues() -> None:
    indonesian = KEY.findall((REPO / "web/i18n/id.js").read_text(encoding="utf-8"))
    english = KEY.findall((REPO / "web/i18n/en.js").read_text(encoding="utf-8"))
    assert len(indonesian) > 100 and len(set(indonesian)) == len(indonesian)
    assert sorted(indonesian) == sorted(english)


async def test_pages_default_to_indonesian_and_switch_to_english(pages: Pages, api: Api, con: asyncpg.Connection) -> None:
    context = await pages.context(CONSOLE)
    page = await pages.page(context)
    await page.goto(pages.url("/"))
    await expect(page.locator("html")).to_have_attribute("lang", "id")
    await expect(page.locator("#login-form button[type=submit]")).to_have_text("Masuk")
    await expect(page.locator("label[for=username]")).to_have_text("Nama pengguna")
    await screenshot(page, "login")
    await page.click("#lang-en")
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    await expect(page.locator("#login-form button[type=submit]")).to_have_text("Log in")
    # A wrong password: the server's error code is shown in the chosen language.
    await page.fill("#username", "operator")
    await page.fill("#password", "wrong-password")
    await page.press("#password", "Enter")
    await expect(page.locator("#login-error")).to_have_text("Wrong username or password.")
    await page.click("#lang-id")

    console = await pages.login(context, "operator", "demo119", "/operator.html")
    await expect(console.locator("body")).to_have_attribute("data-ready", "true")
    await expect(console.locator("#intake-h")).to_have_text("Panggilan baru")
    await expect(console.locator("#unit-board .status-chip").first).to_have_text("Siaga")
    await console.click("#lang-en")
    await expect(console.locator("#intake-h")).to_have_text("New call")
    await expect(console.locator("#incidents-h")).to_have_text("Open incidents")
    await expect(console.locator("#unit-board .status-chip").first).to_have_text("Available")
    await expect(console.locator("#f-priority option").first).to_have_text("Automatic")
    # Required fields are checked before anything is sent, in the chosen language.
    await console.press("#f-phone", "Enter")
    await expect(console.locator("#intake-error")).to_have_text("The caller's number is required.")
    await expect(console.locator("#f-phone")).to_have_attribute("aria-invalid", "true")
    # The location can be picked on the map.
    await console.click("#map", position={"x": 300, "y": 200})
    await expect(console.locator("#f-location")).to_contain_text("Location from the map")
    await console.keyboard.press("Alt+n")
    await expect(console.locator("#f-location")).to_have_text("Location: click the map or pick a kelurahan.")
    await expect(console.locator("#f-phone")).to_be_focused()

    phone_context = await pages.context(PHONE)
    phone = await pages.login(phone_context, "field", "demo119", "/field.html")
    await expect(phone.locator("#unit-status")).to_have_text("Siaga")
    await expect(phone.locator("#idle")).to_have_text("Tidak ada penugasan. Siaga.")
    await screenshot(phone, "field-idle")
    await phone.click("#lang-en")
    await expect(phone.locator("#unit-status")).to_have_text("Available")
    await expect(phone.locator("#idle")).to_have_text("No dispatch. Standing by.")
    await expect(phone.locator("#status-buttons .status-button[data-status='off_duty']")).to_have_text("Go off duty")
    await expect(phone.locator("html")).to_have_attribute("lang", "en")
