"""Stored consult chat: a message over the size limit is refused, and so is one beyond the consult's stored cap.

At the cap a new message is refused with ``chat_full`` rather than an old one
dropped: the chat is part of the consult's record, and nothing accepted is lost.
"""

from __future__ import annotations

import uuid

import asyncpg

from signaling.errors import ChatFull, InvalidMessage
from signaling.ids import UserId


def check_size(text: str, max_bytes: int) -> None:
    if len(text.encode("utf-8", "surrogatepass")) > max_bytes:
        raise InvalidMessage("text", f"must be at most {max_bytes} bytes of UTF-8 (limits.chat_max_bytes)")


async def store(con: asyncpg.Connection, consult_id: str, member: UserId, text: str, max_stored: int) -> int:
    """Insert the message (in the caller's transaction) and return its id; `ChatFull` at the cap."""
    consult = uuid.UUID(consult_id)
    # The consult's row lock (taken already by the access check) makes count-then-insert exact when both doctors write at once.
    await con.execute("SELECT 1 FROM consults WHERE id = $1 FOR NO KEY UPDATE", consult)
    if await con.fetchval("SELECT count(*) FROM consult_chat WHERE consult_id = $1", consult) >= max_stored:
        raise ChatFull(f"this consult already holds {max_stored} chat messages (limits.chat_max_stored)", field="text")
    chat_id: int = await con.fetchval(
        "INSERT INTO consult_chat (consult_id, from_user, text) VALUES ($1, $2, $3) RETURNING id", consult, int(member), text,
    )
    return chat_id
