"""The room page's chat in Chromium: a message whose answer was lost with its socket is sent again with the same id
after the rejoin, stored once and shown once; a message the server relays twice (its sender sent it again) is shown
once by the page that receives it."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import asyncpg
from playwright.async_api import Page, WebSocket, expect

from server import db
from tests.conftest import Api
from tests.e2e.conftest import CONSOLE, Pages
from tests.e2e.consult_support import ready
from tests.server.test_consult_room import join, recv, token_for
from tests.server.test_consults import accepted_consult


def chat_frames(page: Page) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The chats ``page`` sends and receives on its room sockets, from now on, as lists that fill as they go."""
    sent: list[dict[str, Any]] = []
    received: list[dict[str, Any]] = []

    def watch(ws: WebSocket) -> None:
        def note(into: list[dict[str, Any]], payload: str | bytes) -> None:
            message = json.loads(payload)
            if message.get("type") == "chat":
                into.append(message)

        ws.on("framesent", lambda payload: note(sent, payload))
        ws.on("framereceived", lambda payload: note(received, payload))

    page.on("websocket", watch)
    return sent, received


async def writer_waiting(con: asyncpg.Connection) -> int:
    """The backend of the chat writer once it waits for the consult's row (held by ``con``)."""
    async with asyncio.timeout(5):
        while (pid := await con.fetchval("SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                         "AND datname = current_database() AND pid <> pg_backend_pid()")) is None:
            await asyncio.sleep(0.05)
    return int(pid)


async def test_the_page_sends_a_chat_again_with_its_id_and_shows_each_message_once(pages: Pages, api: Api) -> None:
    consult_id, pk, _ = await accepted_consult(api)
    page = await pages.login(await pages.context(CONSOLE), "specialist", "demo119", "/specialist.html")
    sent, received = chat_frames(page)
    await ready(page)
    await page.click(f"#my-consults button[data-consult-id='{consult_id}']")
    await page.click("#join-room")
    await expect(page.locator("#room-state")).to_have_attribute("data-state", "waiting")
    kiosk, _ = await join(api, consult_id, await token_for(api, consult_id, pk))  # the puskesmas, as a bare socket
    con = await db.connect(api.dsn)
    try:
        # The puskesmas's chat, sent again after its answer (as after a reconnect that missed it): relayed twice.
        chat = {"type": "chat", "id": "pk-7b1e", "text": "Saturasi 88%, mohon saran."}
        for _ in range(2):
            await kiosk.send(json.dumps(chat))
            assert await recv(kiosk, "chat_stored") == {"type": "chat_stored", "id": "pk-7b1e"}
        async with asyncio.timeout(5):
            while len(received) < 2:
                await asyncio.sleep(0.05)
        assert [m["id"] for m in received] == ["pk-7b1e", "pk-7b1e"]
        await expect(page.locator("#chat-log li.theirs")).to_have_count(1)
        await expect(page.locator("#chat-log li.theirs .text")).to_have_text(chat["text"])

        # The page's chat waits for its commit (the consult's row is held) when its socket drops: its answer goes
        # with that socket. The page rejoins and sends it again with the same id.
        blocker = con.transaction()
        await blocker.start()
        await con.execute("SELECT 1 FROM consults WHERE id = $1 FOR UPDATE", uuid.UUID(consult_id))
        await page.fill("#chat-text", "Beri oksigen 5 L/menit.")
        await page.press("#chat-text", "Enter")
        mine = page.locator("#chat-log li.mine")
        await expect(mine).to_have_attribute("data-state", "sending")
        await writer_waiting(con)
        await page.evaluate("window.__room.dropSocket()")
        await blocker.commit()
        await expect(mine).to_have_attribute("data-state", "stored")
        await expect(mine).to_have_count(1)
        await expect(mine.locator(".text")).to_have_text("Beri oksigen 5 L/menit.")
        assert [m["text"] for m in sent] == ["Beri oksigen 5 L/menit."] * 2
        assert sent[0]["id"] == sent[1]["id"]
        stored = await con.fetch("SELECT client_id, text FROM consult_chat WHERE consult_id = $1 ORDER BY id", uuid.UUID(consult_id))
        assert [(r["client_id"], r["text"]) for r in stored] == [("pk-7b1e", chat["text"]), (sent[0]["id"], "Beri oksigen 5 L/menit.")]
        relayed = await recv(kiosk, "chat")
        assert (relayed["id"], relayed["text"]) == (sent[0]["id"], "Beri oksigen 5 L/menit.")

        # The writer's connection is killed while the page's chat waits in its transaction: chat_not_stored, and the
        # page sends it again by itself with the same id.
        blocker = con.transaction()
        await blocker.start()
        await con.execute("SELECT 1 FROM consults WHERE id = $1 FOR UPDATE", uuid.UUID(consult_id))
        await page.fill("#chat-text", "Rujuk ke RSUD.")
        await page.press("#chat-text", "Enter")
        assert await con.fetchval("SELECT pg_terminate_backend($1)", await writer_waiting(con))
        await blocker.commit()
        last = page.locator("#chat-log li.mine").last
        await expect(last).to_have_attribute("data-state", "stored")
        await expect(page.locator("#chat-log li.mine")).to_have_count(2)
        assert [m["text"] for m in sent[2:]] == ["Rujuk ke RSUD."] * 2 and sent[2]["id"] == sent[3]["id"]
        assert await con.fetchval("SELECT count(*) FROM consult_chat WHERE consult_id = $1 AND text = 'Rujuk ke RSUD.'",
                                  uuid.UUID(consult_id)) == 1
        await expect(page.locator("#room-error")).to_have_text("")
    finally:
        await con.close()
        await kiosk.close()
