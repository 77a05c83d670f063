"""The administrator's page: register a unit, put it on duty (the console sees it live), edit it, take it off
duty; change and add call types in the triage table; follow who is on call and which requests wait; read the
audit log; see the last backup and a failed one. Refused input shows the server's error and changes nothing."""

from __future__ import annotations

import re

import asyncpg
from playwright.async_api import expect

from server import backup_runs, db
from server.config import DatabaseSettings
from tests.conftest import Api
from tests.e2e.conftest import CONSOLE, Pages, screenshot
from tests.server.test_consults import request_consult

BASE = "rs-eka-hospital-bsd"


async def test_fleet_triage_consults_and_audit(pages: Pages, api: Api, con: asyncpg.Connection) -> None:
    admin = await pages.login(await pages.context(CONSOLE), "admin", "demo119", "/admin.html")
    await expect(admin.locator("body")).to_have_attribute("data-ready", "true")
    units = admin.locator("#units tr")
    await expect(units).to_have_count(await con.fetchval("SELECT count(*) FROM units"))
    console = await pages.login(await pages.context(CONSOLE), "operator", "demo119", "/operator.html")
    await expect(console.locator("body")).to_have_attribute("data-ready", "true")

    # Register an ambulance at a hospital: it starts off duty, based where the hospital is.
    await admin.fill("#u-id", "amb-uji-1")
    await admin.fill("#u-callsign", "AMB-UJI-1")
    await admin.select_option("#u-kind", "ambulance")
    await admin.select_option("#u-base", BASE)
    await admin.fill("#u-crew", "Budi Santoso, Sari Dewi")
    await admin.check("#u-cap-als")
    await admin.check("#u-cap-transport")
    await admin.click("#unit-save")
    await expect(admin.locator("#unit-message")).to_contain_text("AMB-UJI-1")
    row = admin.locator("#units tr[data-unit-id='amb-uji-1']")
    await expect(row).to_have_attribute("data-status", "off_duty")
    stored = await con.fetchrow(
        "SELECT u.capabilities, u.crew, u.base_lat = f.lat AND u.base_lon = f.lon AS at_base FROM units u "
        "JOIN facilities f ON f.code = u.base_facility WHERE u.id = 'amb-uji-1' AND f.code = $1", BASE,
    )
    assert (sorted(stored["capabilities"]), stored["crew"], stored["at_base"]) == (["als", "transport"], ["Budi Santoso", "Sari Dewi"], True)

    # On duty: the console's unit board shows it available at once.
    await row.locator("button.duty-on").click()
    await expect(row).to_have_attribute("data-status", "available")
    await expect(console.locator("#unit-board li[data-unit-id='amb-uji-1']")).to_have_attribute("data-status", "available")

    # A second unit with the same callsign is refused with the server's reason; nothing is added.
    count = await con.fetchval("SELECT count(*) FROM units")
    await admin.click("#unit-new")
    await admin.fill("#u-id", "amb-uji-2")
    await admin.fill("#u-callsign", "AMB-UJI-1")
    await admin.select_option("#u-base", BASE)
    await admin.click("#unit-save")
    await expect(admin.locator("#unit-error")).to_have_text("Kode panggil (callsign): sudah dipakai unit lain")
    assert await con.fetchval("SELECT count(*) FROM units") == count

    # Edit, then off duty.
    await row.locator("button.edit").click()
    await expect(admin.locator("#u-id")).to_be_disabled()
    await admin.fill("#u-callsign", "AMB-UJI-A")
    await admin.click("#unit-save")
    await expect(row.locator(".callsign")).to_have_text("AMB-UJI-A")
    await row.locator("button.duty-off").click()
    await expect(row).to_have_attribute("data-status", "off_duty")
    assert await con.fetchval("SELECT (callsign, status)::text FROM units WHERE id = 'amb-uji-1'") == "(AMB-UJI-A,off_duty)"

    # Triage: raise a call type to merah, and add one.
    fall = admin.locator("#triage tr[data-code='elderly_fall']")
    await fall.locator("select[name=priority]").select_option("merah")
    await fall.locator("button.save").click()
    await expect(admin.locator("#triage-message")).to_contain_text("elderly_fall")
    assert await con.fetchval("SELECT priority FROM triage_types WHERE code = 'elderly_fall'") == "merah"
    new = admin.locator("#triage tr.new-call-type")
    await new.locator("[name=code]").fill("tenggelam")
    await new.locator("[name=label_id]").fill("Tenggelam")
    await new.locator("[name=label_en]").fill("Drowning")
    await new.locator("select[name=priority]").select_option("merah")
    await new.locator("[name=capabilities]").fill("als, rescue")
    await new.locator("button.save").click()
    await expect(admin.locator("#triage tr[data-code='tenggelam']")).to_have_count(1)
    stored = await con.fetchrow("SELECT priority, capabilities, active FROM triage_types WHERE code = 'tenggelam'")
    assert (stored["priority"], sorted(stored["capabilities"]), stored["active"]) == ("merah", ["als", "rescue"], True)
    # An unknown capability is refused with its field; the table is unchanged.
    await new.locator("[name=code]").fill("salah")
    await new.locator("[name=label_id]").fill("Salah")
    await new.locator("[name=label_en]").fill("Wrong")
    await new.locator("[name=capabilities]").fill("teleport")
    await new.locator("button.save").click()
    await expect(admin.locator("#triage-error")).to_have_text("Kemampuan: bukan kemampuan yang dikenal")
    assert await con.fetchval("SELECT count(*) FROM triage_types WHERE code = 'salah'") == 0

    # Consults: a specialist going on call and a new request show up live.
    await expect(admin.locator("#waiting li.hint")).to_be_visible()
    specialist, puskesmas = await api.login("specialist"), await api.login("puskesmas")
    assert (await api.call("PUT", "/api/oncall", specialist, json={"specialty": "jantung", "on_call": True}))[0] == 200
    name = await con.fetchval("SELECT display_name FROM users WHERE username = 'specialist'")
    await expect(admin.locator("#on-call li[data-specialty='jantung']")).to_contain_text(name)
    status, body = await request_consult(api, puskesmas)
    assert status == 201, body
    await expect(admin.locator(f"#waiting li[data-consult-id='{body['consult']['id']}']")).to_be_visible()

    # The audit log, filtered by action.
    await admin.fill("#a-action", "unit.create")
    await admin.click("#audit-form button[type=submit]")
    await expect(admin.locator("#audit tr")).to_have_count(1)
    # In words: who, what, which unit by its callsign, the date with the time, and what the entry records.
    entry = admin.locator("#audit tr")
    await expect(entry.locator("td").nth(1)).to_have_text("admin")
    await expect(entry.locator("td").nth(2)).to_have_text("mendaftarkan unit")
    await expect(entry.locator("td").nth(3)).to_have_text("unit AMB-UJI-A")  # by its callsign now (renamed above)
    at = await con.fetchval("SELECT at FROM audit_log WHERE action = 'unit.create' AND object = 'unit:amb-uji-1'")
    await expect(entry.locator("td").nth(0)).to_contain_text(str(at.astimezone().year))
    # An edit says what it changed; taking the unit off duty says from which status to which.
    await admin.fill("#a-action", "unit.update")
    await admin.click("#audit-form button[type=submit]")
    await expect(entry.locator("td").nth(4)).to_contain_text("diubah: Pangkalan, Lintang pangkalan, Bujur pangkalan, Kode panggil (callsign)")
    await admin.fill("#a-action", "unit.status")
    await admin.click("#audit-form button[type=submit]")
    await expect(entry.first.locator("td").nth(2)).to_have_text("mengubah status unit")
    await expect(entry.first.locator("td").nth(4)).to_have_text("status: Tidak bertugas · sebelumnya: Siaga")
    # Capabilities are named in words on the fleet table.
    await expect(admin.locator("#units tr[data-unit-id='amb-uji-1'] td").nth(5)).to_contain_text("ALS (bantuan hidup lanjut)")
    await admin.evaluate("window.scrollTo(0, 0)")
    await screenshot(admin, "admin")


async def test_an_attacked_account_shows_one_alert_on_the_admin_page(pages: Pages, api: Api) -> None:
    admin = await pages.login(await pages.context(CONSOLE), "admin", "demo119", "/admin.html")
    await expect(admin.locator("body")).to_have_attribute("data-ready", "true")
    await expect(admin.locator("#alerts-panel")).to_be_hidden()
    for i in range(7):  # five failures reach the limit; the refused ones after them add no alert
        status, _ = await api.call("POST", "/api/auth/login", json={"username": "operator", "password": f"guess-{i}"})
        assert status in (401, 429)
    alert = admin.locator("#alerts li[data-alert='login_failures']")
    await expect(alert).to_have_count(1)
    await expect(alert).to_contain_text("operator")
    await expect(admin.locator("#audit-h")).to_be_visible()
    await admin.locator("#alerts .dismiss").click()
    await expect(alert).to_have_count(0)


async def test_the_admin_page_shows_the_last_backup_and_a_failed_one_as_an_alert(pages: Pages, api: Api, con: asyncpg.Connection) -> None:
    await con.execute(
        "INSERT INTO backup_runs (started_at, finished_at, ok, scheduled, file, bytes)"
        " VALUES (now() - interval '3 hours 1 minute', now() - interval '3 hours', true, true, '/b/psc119-x.tar', 1000)"
    )
    admin = await pages.login(await pages.context(CONSOLE), "admin", "demo119", "/admin.html")
    await expect(admin.locator("body")).to_have_attribute("data-ready", "true")
    await expect(admin.locator("#backup-status")).to_have_attribute("data-state", "ok")
    await expect(admin.locator("#backup-status")).to_contain_text("3 jam lalu")
    pool = await db.create_pool(api.dsn, DatabaseSettings(pool_min=1, pool_max=1))
    try:
        run_id = await backup_runs.claim(pool, None)
        assert run_id is not None
        await backup_runs.finish(pool, run_id, None, "pg_dump failed (1): connection refused")
    finally:
        await pool.close()
    alert = admin.locator("#alerts li[data-alert='backup_failed']")
    await expect(alert).to_have_count(1)
    await expect(alert).to_contain_text("pg_dump failed (1): connection refused")
    await expect(admin.locator("#backup-status")).to_contain_text("3 jam lalu")  # the last good one stays


async def test_a_change_made_elsewhere_leaves_an_edit_under_way_as_it_is(pages: Pages, api: Api, con: asyncpg.Connection) -> None:
    admin = await pages.login(await pages.context(CONSOLE), "admin", "demo119", "/admin.html")
    await expect(admin.locator("body")).to_have_attribute("data-ready", "true")
    fall = admin.locator("#triage tr[data-code='elderly_fall']")
    await fall.locator("[name=label_en]").fill("Fall of an older person")
    new = admin.locator("#triage tr.new-call-type")
    await new.locator("[name=code]").fill("tenggelam")
    await new.locator("[name=label_id]").fill("Tenggelam")
    # Another admin changes another call type: the table shows it, and the edits under way stay.
    other = await con.fetchrow("SELECT code, label_id, label_en, capabilities FROM triage_types WHERE code <> 'elderly_fall' ORDER BY code LIMIT 1")
    token = await api.login("admin")
    status, body = await api.call("PUT", f"/api/triage/{other['code']}", token, json={
        "label_id": other["label_id"], "label_en": "Changed elsewhere", "priority": "merah",
        "capabilities": list(other["capabilities"]), "active": True,
    })
    assert status == 200, body
    changed = admin.locator(f"#triage tr[data-code='{other['code']}']")
    await expect(changed.locator("[name=label_en]")).to_have_value("Changed elsewhere")
    await expect(fall.locator("[name=label_en]")).to_have_value("Fall of an older person")
    await expect(new.locator("[name=code]")).to_have_value("tenggelam")
    await expect(new.locator("[name=label_id]")).to_have_value("Tenggelam")
    # Saving the edited row takes it, and the row then follows the table again.
    await fall.locator("button.save").click()
    await expect(admin.locator("#triage-message")).to_contain_text("elderly_fall")
    assert await con.fetchval("SELECT label_en FROM triage_types WHERE code = 'elderly_fall'") == "Fall of an older person"
    await expect(new.locator("[name=code]")).to_have_value("tenggelam")


async def test_a_change_made_elsewhere_leaves_the_field_just_entered_focused(pages: Pages, api: Api, con: asyncpg.Connection) -> None:
    admin = await pages.login(await pages.context(CONSOLE), "admin", "demo119", "/admin.html")
    await expect(admin.locator("body")).to_have_attribute("data-ready", "true")
    label = admin.locator("#triage tr[data-code='elderly_fall'] [name=label_en]")
    await label.focus()  # entered, nothing typed yet
    other = await con.fetchrow("SELECT code, label_id, capabilities FROM triage_types WHERE code <> 'elderly_fall' ORDER BY code LIMIT 1")
    status, body = await api.call("PUT", f"/api/triage/{other['code']}", await api.login("admin"), json={
        "label_id": other["label_id"], "label_en": "Changed elsewhere", "priority": "merah",
        "capabilities": list(other["capabilities"]), "active": True,
    })
    assert status == 200, body
    await expect(admin.locator(f"#triage tr[data-code='{other['code']}'] [name=label_en]")).to_have_value("Changed elsewhere")
    await expect(label).to_be_focused()
    await admin.keyboard.press("End")
    await admin.keyboard.insert_text(" at home")
    await admin.locator("#triage tr[data-code='elderly_fall'] button.save").click()
    await expect(admin.locator("#triage-message")).to_contain_text("elderly_fall")
    assert (await con.fetchval("SELECT label_en FROM triage_types WHERE code = 'elderly_fall'")).endswith(" at home")


async def test_the_triage_editor_shows_transport_as_its_own_need(pages: Pages, con: asyncpg.Connection) -> None:
    carried, stays = [await con.fetchval(
        f"SELECT code FROM triage_types WHERE active AND {'' if needs else 'NOT '}'transport' = ANY(capabilities) ORDER BY code LIMIT 1")
        for needs in (True, False)]
    care = sorted(c for c in await con.fetchval("SELECT capabilities FROM triage_types WHERE code = $1", carried) if c != "transport")
    admin = await pages.login(await pages.context(CONSOLE), "admin", "demo119", "/admin.html")
    await expect(admin.locator("body")).to_have_attribute("data-ready", "true")
    row, other = admin.locator(f"#triage tr[data-code='{carried}']"), admin.locator(f"#triage tr[data-code='{stays}']")
    # Transport is not listed among the care a first responder gives; it is a checkbox of its own.
    await expect(row.locator("[name=capabilities]")).to_have_value(", ".join(care))
    await expect(row.locator("[name=transport]")).to_be_checked()
    await expect(row.locator("[name=transport]")).to_have_attribute("aria-label", "Perlu angkut pasien")
    await expect(other.locator("[name=transport]")).not_to_be_checked()
    await expect(admin.locator("#triage-h + p + table th").nth(5)).to_have_text("Perlu angkut pasien")
    await admin.click("#lang-en")
    await expect(admin.locator("#triage-h + p + table th").nth(4)).to_have_text("Care capabilities")
    await expect(admin.locator("#triage-h + p + table th").nth(5)).to_have_text("Needs transport")

    # The box decides whether the call type needs transport; its care stays as it was.
    await row.locator("[name=transport]").uncheck()
    await row.locator("button.save").click()
    await expect(admin.locator("#triage-message")).to_contain_text(carried)
    assert sorted(await con.fetchval("SELECT capabilities FROM triage_types WHERE code = $1", carried)) == care
    await other.locator("[name=transport]").check()
    await other.locator("button.save").click()
    await expect(admin.locator("#triage-message")).to_contain_text(stays)
    assert "transport" in await con.fetchval("SELECT capabilities FROM triage_types WHERE code = $1", stays)
    await expect(other.locator("[name=transport]")).to_be_checked()
    await expect(other.locator("[name=capabilities]")).not_to_have_value(re.compile("transport"))
