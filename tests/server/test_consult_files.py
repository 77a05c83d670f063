"""Consult attachments: upload by the requester, download by members and admins only,
stored outside the web root, size limit, accepted types, and content that must match its label."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from server.handlers.static import WEB_ROOT
from tests.conftest import Api, start_api
from tests.server.test_consults import accepted_consult, add_users, close_api, consult_config

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(200)
JPEG = b"\xff\xd8\xff\xe0" + bytes(300)
PDF = b"%PDF-1.4\n% ekg\n" + bytes(100)
DICOM = bytes(128) + b"DICM" + bytes(64)
LIMIT = 4096


@pytest.fixture
async def capi(demo_dsn: str, tmp_path: Path) -> AsyncIterator[Api]:
    client = await start_api(demo_dsn, consult_config(demo_dsn, tmp_path / "var", attachment_max_bytes=LIMIT))
    yield client
    await close_api(client)


async def _post(api: Api, consult_id: str, token: str, data: bytes, content_type: str, filename: str) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": content_type}
    async with api.session.post(api.url(f"/api/consults/{consult_id}/attachments"), params={"filename": filename}, data=data, headers=headers) as r:
        return r.status, await r.json()


async def test_upload_and_members_only_download(capi: Api, tmp_path: Path) -> None:
    consult_id, pk, sp = await accepted_consult(capi)
    stored = []
    for data, kind, name in ((PNG, "image/png", "ekg 12 sadapan.png"), (JPEG, "image/jpeg", "rontgen.jpg"),
                             (PDF, "application/pdf", "lab.pdf"), (DICOM, "application/dicom", "usg.dcm")):
        status, body = await _post(capi, consult_id, pk, data, kind, name)
        assert status == 201, body
        entry = body["attachment"]
        assert (entry["filename"], entry["content_type"], entry["size"]) == (name, kind, len(data))
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        stored.append((entry["id"], data, kind))
    # On disk under var_dir, named by id, never in the web root.
    files = sorted(p for p in (tmp_path / "var" / "attachments").rglob("*") if p.is_file())
    assert len(files) == 4 and {p.name for p in files} == {s[0] for s in stored}
    assert not any(p.resolve().is_relative_to(WEB_ROOT) for p in files)

    admin = await capi.login("admin")
    for session in (pk, sp, admin):
        for attachment_id, data, kind in stored:
            headers = {"Authorization": f"Bearer {session}"}
            async with capi.session.get(capi.url(f"/api/consults/{consult_id}/attachments/{attachment_id}"), headers=headers) as r:
                assert r.status == 200 and await r.read() == data
                assert r.content_type == kind and r.headers["X-Content-Type-Options"] == "nosniff"
                assert r.headers["Content-Disposition"].startswith("attachment;")
    [outsider] = await add_users(capi.dsn, "lain", 1)
    other = await capi.login(outsider, "demo119x")
    status, _ = await capi.call("GET", f"/api/consults/{consult_id}/attachments/{stored[0][0]}", other)
    assert status == 403
    status, _ = await capi.call("GET", f"/api/consults/{consult_id}/attachments/{consult_id}", pk)
    assert status == 404
    # Listed with the consult; only the requesting doctor uploads.
    _, seen = await capi.call("GET", f"/api/consults/{consult_id}", sp)
    assert [a["id"] for a in seen["consult"]["attachments"]] == [s[0] for s in stored]
    status, _ = await _post(capi, consult_id, sp, PNG, "image/png", "x.png")
    assert status == 403
    _, log = await capi.call("GET", f"/api/audit?action=consult.attachment.read&object=consult:{consult_id}", admin)
    assert {e["username"] for e in log["entries"]} == {"puskesmas", "specialist", "admin"}


async def test_size_type_and_content_are_checked_and_nothing_is_stored(capi: Api, tmp_path: Path) -> None:
    consult_id, pk, _ = await accepted_consult(capi)
    cases = [
        (PNG + bytes(LIMIT), "image/png", "big.png", 413, None),
        (b"MZ\x90\x00" + bytes(100), "application/x-msdownload", "virus.exe", 422, "content_type"),
        (b"<html><script>alert(1)</script></html>", "text/html", "x.html", 422, "content_type"),
        (PDF, "image/png", "looks-like.png", 422, "content_type"),  # mislabelled
        (b"GIF89a" + bytes(50), "image/jpeg", "gif.jpg", 422, "content_type"),
        (PNG, "image/png", "../../etc/passwd", 422, "filename"),
        (PNG, "image/png", "", 422, "filename"),
    ]
    for data, kind, name, status, field in cases:
        got, body = await _post(capi, consult_id, pk, data, kind, name)
        assert got == status, (name, body)
        assert body["error"]["field"] == field, (name, body)
    assert not (tmp_path / "var" / "attachments").exists() or not any((tmp_path / "var" / "attachments").rglob("*"))
    _, seen = await capi.call("GET", f"/api/consults/{consult_id}", pk)
    assert seen["consult"]["attachments"] == []


async def test_a_full_disk_is_507_leaves_nothing_and_the_next_upload_works(demo_dsn: str, tmp_path: Path) -> None:
    """A real full disk: a 256 KiB tmpfs mounted as the attachment directory (the suite runs as root)."""
    attachments = tmp_path / "var" / "attachments"
    attachments.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(attachments)], check=True)
    try:
        api = await start_api(demo_dsn, consult_config(demo_dsn, tmp_path / "var", attachment_max_bytes=1_048_576))
        try:
            consult_id, pk, _ = await accepted_consult(api)
            status, body = await _post(api, consult_id, pk, PNG + bytes(512 * 1024), "image/png", "ct scan.png")
            assert status == 507, body
            assert body["error"]["code"] == "insufficient_storage" and "disk is full" in body["error"]["message"]
            assert [p for p in attachments.rglob("*") if p.is_file()] == []
            _, seen = await api.call("GET", f"/api/consults/{consult_id}", pk)
            assert seen["consult"]["attachments"] == []
            # The space is free again: a small file fits.
            status, body = await _post(api, consult_id, pk, PNG, "image/png", "ekg.png")
            assert status == 201, body
            assert [p.name for p in attachments.rglob("*") if p.is_file()] == [body["attachment"]["id"]]
        finally:
            await close_api(api)
    finally:
        subprocess.run(["umount", str(attachments)], check=True)
