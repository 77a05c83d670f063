"""Consult attachments: ECG photos, X-ray and ultrasound images, PDFs and DICOM files.

An upload is the raw request body with its ``Content-Type`` and a ``?filename=``.
It is refused when larger than ``consult.attachment_max_bytes`` (413, counted while
reading, whatever Content-Length claims), when its type is not in
``consult.attachment_types`` (422 on ``content_type``), and when its first bytes do
not match the declared type (a mislabelled file, 422 on ``content_type``). A full
disk (or quota) is a 507 that leaves neither a partial file nor a row behind.

Files live under ``<server.var_dir>/attachments/<consult id>/<attachment id>``, named
by id only (the user's file name is kept in the database), never under the web
root; they are served to whoever may read the consult (`signaling.access`).
"""

from __future__ import annotations

import asyncio
import hashlib
import unicodedata
import uuid
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp import web

from server import audit, events
from server.config import Config
from server.consults import Stored
from server.errors import STORAGE_FULL, Gone, InsufficientStorage, InvalidField, NotFound, PayloadTooLarge

# Magic bytes per content type: (offset, bytes).
SIGNATURES: dict[str, tuple[tuple[int, bytes], ...]] = {
    "image/jpeg": ((0, b"\xff\xd8\xff"),),
    "image/png": ((0, b"\x89PNG\r\n\x1a\n"),),
    "application/pdf": ((0, b"%PDF-"),),
    "application/dicom": ((128, b"DICM"),),  # a 128-byte preamble, then the DICM prefix
}
FILENAME_MAX = 200
COLUMNS = "id, consult_id, uploaded_by, filename, content_type, size, sha256, at"


def root(config: Config) -> Path:
    return Path(config.server.var_dir).resolve() / "attachments"


def looks_like(content_type: str, data: bytes) -> bool:
    signatures = SIGNATURES.get(content_type)
    if signatures is None:
        return False
    return any(data[offset:offset + len(magic)] == magic for offset, magic in signatures)


def check_filename(name: str | None) -> str:
    if name is None or not name.strip():
        raise InvalidField("is required (?filename=...)", field="filename")
    if len(name) > FILENAME_MAX:
        raise InvalidField(f"must be at most {FILENAME_MAX} characters", field="filename")
    if any(ch in "/\\" or unicodedata.category(ch) == "Cc" for ch in name) or name in (".", ".."):
        raise InvalidField("must be a plain file name", field="filename")
    return name


async def read_upload(request: web.Request, config: Config) -> tuple[str, str, bytes]:
    """The checked (filename, content type, bytes) of an upload request."""
    settings = config.consult
    filename = check_filename(request.query.get("filename"))
    content_type = request.content_type
    if content_type not in settings.attachment_types:
        allowed = ", ".join(settings.attachment_types)
        raise InvalidField(f"{content_type!r} is not accepted; one of {allowed}", field="content_type")
    limit = settings.attachment_max_bytes
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"an attachment may be at most {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"an attachment may be at most {limit} bytes")
        chunks.append(chunk)
    data = b"".join(chunks)
    if not data:
        raise InvalidField("the file is empty", field="body")
    if not looks_like(content_type, data):
        raise InvalidField(f"the content is not {content_type}", field="content_type")
    return filename, content_type, data


def _write(path: Path, data: bytes) -> None:
    partial = path.with_suffix(".part")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial.write_bytes(data)
        partial.replace(path)
    except OSError as exc:
        if exc.errno in STORAGE_FULL:
            raise InsufficientStorage("the server's disk is full; the attachment was not stored") from exc
        raise
    finally:
        # A partial file would hold the space that the next upload needs.
        partial.unlink(missing_ok=True)


async def store(
    con: asyncpg.Connection, config: Config, actor: audit.Actor, stored: Stored, upload: tuple[str, str, bytes]
) -> dict[str, Any]:
    filename, content_type, data = upload
    attachment_id = uuid.uuid4()
    relative = Path(stored.id) / str(attachment_id)
    await asyncio.to_thread(_write, root(config) / relative, data)
    digest = hashlib.sha256(data).hexdigest()
    async with con.transaction():
        row = await con.fetchrow(
            f"""INSERT INTO consult_attachments (id, consult_id, uploaded_by, filename, content_type, size, sha256, stored_path)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {COLUMNS}""",
            attachment_id, uuid.UUID(stored.id), actor.user_id, filename, content_type, len(data), digest, str(relative),
        )
        entry = wire(row)
        await events.append(con, "consult.attachment_added", {"consult": stored.id, "attachment": entry["id"]}, stored.audience())
        await audit.record(con, actor, "consult.attachment.add", f"consult:{stored.id}", {"attachment": entry["id"], "size": len(data)})
    return entry


def wire(row: asyncpg.Record) -> dict[str, Any]:
    entry = dict(row)
    entry["id"] = str(entry["id"])
    entry["consult_id"] = str(entry["consult_id"])
    return entry


async def listing(con: asyncpg.Connection | asyncpg.Pool, consult_id: str) -> list[dict[str, Any]]:
    return (await listings(con, [consult_id]))[consult_id]


async def listings(con: asyncpg.Connection | asyncpg.Pool, consult_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Each consult's attachments, oldest first: one read for them all."""
    rows = await con.fetch(
        f"SELECT {COLUMNS} FROM consult_attachments WHERE consult_id = ANY($1::uuid[]) ORDER BY at",
        [uuid.UUID(c) for c in consult_ids],
    )
    found: dict[str, list[dict[str, Any]]] = {c: [] for c in consult_ids}
    for r in rows:
        found[str(r["consult_id"])].append(wire(r))
    return found


async def find(con: asyncpg.Connection | asyncpg.Pool, config: Config, stored: Stored, attachment_id: str) -> tuple[dict[str, Any], Path]:
    try:
        key = uuid.UUID(attachment_id)
    except ValueError:
        raise NotFound(f"no attachment {attachment_id[:64]!r}") from None
    row = await con.fetchrow(
        f"SELECT {COLUMNS}, stored_path, deleted_at FROM consult_attachments WHERE id = $1 AND consult_id = $2", key, uuid.UUID(stored.id)
    )
    if row is None:
        raise NotFound(f"no attachment {attachment_id[:64]!r} in this consult")
    if row["deleted_at"] is not None:
        raise Gone(f"the attachment was deleted on {row['deleted_at']:%Y-%m-%d} under the retention policy")
    base = root(config)
    path = (base / row["stored_path"]).resolve()
    if not path.is_relative_to(base):
        raise NotFound("attachment file missing")
    entry = wire(row)
    entry.pop("stored_path")
    entry.pop("deleted_at")
    return entry, path
