"""Shift handover at a puskesmas, in Chromium: the doctor on the next shift opens a colleague's consult from the
list, reads the case, its attachment and the specialist's answer, and is offered nothing that would change it
or enter its video room."""

from __future__ import annotations

import asyncpg
from playwright.async_api import expect

from tests.conftest import Api
from tests.e2e.conftest import CONSOLE, Pages
from tests.e2e.consult_support import ready
from tests.e2e.test_consult_pages import api  # noqa: F401  (the app with its attachments in a temporary directory)
from tests.server.test_consult_files import PNG, _post
from tests.server.test_consults import OUTCOME, PATIENT, add_users, request_consult


async def test_the_next_shift_reads_a_colleagues_consult(pages: Pages, api: Api, con: asyncpg.Connection) -> None:
    pk = await api.login("puskesmas")
    _, me = await api.call("GET", "/api/me", pk)
    [colleague] = await add_users(api.dsn, "rekan", 1, role="puskesmas", facility=me["facility_code"])
    status, body = await request_consult(api, pk)
    assert status == 201, body
    consult_id = body["consult"]["id"]
    status, body = await _post(api, consult_id, pk, PNG, "image/png", "ekg.png")
    assert status == 201, body
    answered = await request_consult(api, pk, urgency="routine")
    sp = await api.login("specialist")
    for cid, outcome in ((consult_id, None), (answered[1]["consult"]["id"], OUTCOME)):
        status, body = await api.call("POST", f"/api/consults/{cid}/accept", sp)
        assert status == 200, body
        if outcome:
            status, body = await api.call("POST", f"/api/consults/{cid}/complete", sp, json={"outcome": outcome})
            assert status == 200, body

    page = await pages.login(await pages.context(CONSOLE), colleague, "demo119x", "/puskesmas.html")
    await ready(page)
    await expect(page.locator("#consult-list .consult-item")).to_have_count(2)

    # The open consult: the case and its attachment, but no room, no cancel, no new files.
    await page.click(f".consult-item[data-consult-id='{consult_id}']")
    await expect(page.locator("#case")).to_have_attribute("data-consult-id", consult_id)
    await expect(page.locator("#case-body")).to_contain_text(PATIENT["chief_complaint"])
    await expect(page.locator("#case-attachments a.attachment")).to_have_text("ekg.png")
    for hidden in ("#join-room", "#cancel-consult", "#add-files"):
        await expect(page.locator(hidden)).to_be_hidden()
    await expect(page.locator("#case-error")).to_be_empty()

    # The answered one: what the specialist decided, to act on during this shift.
    await page.click(f".consult-item[data-consult-id='{answered[1]['consult']['id']}']")
    await expect(page.locator("#case-answer .decision")).to_have_attribute("data-decision", "refer")
    await expect(page.locator("#case-answer")).to_contain_text(OUTCOME["soap"]["assessment"])
    readers = await con.fetch("SELECT DISTINCT detail->>'as' AS reader FROM audit_log WHERE username = $1 AND action = 'consult.read'", colleague)
    assert [r["reader"] for r in readers] == ["colleague"]
