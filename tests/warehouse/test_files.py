"""Uploading, inspecting, downloading and deleting files."""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import AsyncIterator
from functools import lru_cache

import httpx
import pytest

from loadtests.pdfgen import scanned_pdf
from storage import object_store
from tests.factories import Api, LiveServer, Subtree, auth
from tests.pdfs import text_pdf

pytestmark = pytest.mark.asyncio(loop_scope="session")


@lru_cache(maxsize=1)
def scan() -> bytes:
    """A 3-page colour scan at 200 dpi, image-only, as a commune's scanner makes it."""
    return scanned_pdf(pages=3, dpi=200, seed=7)


async def object_keys(api: Api) -> set[str]:
    store = object_store(api.settings)
    try:
        return set(
            await store._run(
                lambda: [
                    o.object_name
                    for o in store._client.list_objects(bucket_name=store.bucket, prefix="originals/", recursive=True)
                ]
            )
        )
    finally:
        await store.aclose()


async def test_scan_uploads_streams_and_becomes_ready_with_its_pages(api: Api, tree: Subtree) -> None:
    _, token = await api.account("operator", tree.commune(1))
    dossier = await api.dossier(token)
    data = scan()
    r = await api.upload(
        token,
        dossier["id"],
        data,
        kind="result",
        filename="Giấy chứng nhận.pdf",
        headers={"X-Content-SHA256": hashlib.sha256(data).hexdigest()},
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    assert body["size"] == len(data)
    assert body["state"] == "processing"
    assert r.headers["location"] == f"/api/v1/files/{body['id']}"

    await api.run_worker()
    f = await api.file(token, body["id"])
    assert f["state"] == "ready"
    assert f["pages"] == 3
    assert f["inspection"]["pdf_version"] == "1.4"
    assert f["inspection"]["text_layer"] is False
    assert f["name"] == unicodedata.normalize("NFC", "Giấy chứng nhận.pdf")

    got = await api.client.get(f"/api/v1/files/{body['id']}/content", headers=auth(token))
    assert got.status_code == 200
    assert got.content == data
    assert got.headers["content-type"].startswith("application/pdf")
    assert "filename*=UTF-8''Gi%E1%BA%A5y" in got.headers["content-disposition"]

    dossier_view = await api.client.get(f"/api/v1/dossiers/{dossier['id']}", headers=auth(token))
    assert [x["id"] for x in dossier_view.json()["files"]] == [body["id"]]


async def test_presigned_redirect_serves_the_same_bytes(api: Api, tree: Subtree) -> None:
    _, token = await api.account("operator", tree.commune(1))
    dossier = await api.dossier(token)
    data = text_pdf()
    file_id = (await api.upload(token, dossier["id"], data)).json()["id"]
    r = await api.client.get(f"/api/v1/files/{file_id}/content?redirect=1", headers=auth(token), follow_redirects=False)
    assert r.status_code == 307, r.text
    async with httpx.AsyncClient() as plain:
        fetched = await plain.get(r.headers["location"])
    assert fetched.status_code == 200
    assert fetched.content == data


async def test_multipart_upload_with_kind_field(api: Api, tree: Subtree) -> None:
    _, token = await api.account("operator", tree.commune(1))
    dossier = await api.dossier(token)
    data = text_pdf()
    r = await api.client.post(
        f"/api/v1/dossiers/{dossier['id']}/files",
        files={"file": ("Tờ khai.pdf", data, "application/pdf")},
        data={"kind": "component"},
        headers=auth(token),
    )
    assert r.status_code == 201, r.text
    assert r.json()["name"] == "Tờ khai.pdf"
    assert r.json()["kind"] == "component"
    got = await api.client.get(f"/api/v1/files/{r.json()['id']}/content", headers=auth(token))
    assert got.content == data


async def test_multipart_without_kind_is_rejected_and_keeps_nothing(api: Api, tree: Subtree) -> None:
    _, token = await api.account("operator", tree.commune(1))
    dossier = await api.dossier(token)
    before = await object_keys(api)
    r = await api.client.post(
        f"/api/v1/dossiers/{dossier['id']}/files",
        files={"file": ("a.pdf", text_pdf(), "application/pdf")},
        headers=auth(token),
    )
    assert r.status_code == 422
    assert r.json()["code"] == "invalid_file_kind"
    assert await object_keys(api) == before


async def test_checksum_mismatch_is_422_and_records_nothing(api: Api, tree: Subtree) -> None:
    _, token = await api.account("operator", tree.commune(1))
    dossier = await api.dossier(token)
    before = await object_keys(api)
    r = await api.upload(token, dossier["id"], scan(), headers={"X-Content-SHA256": "0" * 64})
    assert r.status_code == 422
    problem = r.json()
    assert problem["code"] == "checksum_mismatch"
    assert problem["status"] == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "send it again" in problem["detail"]
    view = await api.client.get(f"/api/v1/dossiers/{dossier['id']}", headers=auth(token))
    assert view.json()["files"] == []
    assert await object_keys(api) == before


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"PK\x03\x04 this is a zip file, not a scan" * 50, 415, "not_a_pdf"),
        (b"<html><body>hello</body></html>", 415, "not_a_pdf"),
        (b"", 400, "empty_body"),
    ],
)
async def test_bodies_that_are_not_pdfs_are_refused(
    api: Api, body: bytes, status: int, code: str, tree: Subtree
) -> None:
    _, token = await api.account("operator", tree.commune(1))
    dossier = await api.dossier(token)
    before = await object_keys(api)
    r = await api.upload(token, dossier["id"], body)
    assert r.status_code == status
    assert r.json()["code"] == code
    assert await object_keys(api) == before


async def test_missing_or_wrong_kind_and_bad_checksum_header_are_422(api: Api, tree: Subtree) -> None:
    _, token = await api.account("operator", tree.commune(1))
    dossier = await api.dossier(token)
    r = await api.upload(token, dossier["id"], text_pdf(), kind="photo")
    assert (r.status_code, r.json()["code"]) == (422, "invalid_file_kind")
    r = await api.upload(token, dossier["id"], text_pdf(), headers={"X-Content-SHA256": "xyz"})
    assert (r.status_code, r.json()["code"]) == (422, "invalid_checksum")


async def test_oversized_body_is_413_and_leaves_no_object(api: Api, tree: Subtree) -> None:
    limit = 6 * 1024 * 1024
    data = scan() * 4  # starts like a PDF; only its size matters here
    assert len(data) > limit
    _, token = await api.account("operator", tree.commune(1))
    dossier = await api.dossier(token)
    before = await object_keys(api)
    headers = {**auth(token), "Content-Type": "application/pdf", "X-File-Kind": "component"}
    with LiveServer(WAREHOUSE_MAX_FILE_BYTES=str(limit), WAREHOUSE_S3_PART_SIZE=str(5 * 1024 * 1024)) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            # Announced length over the limit: refused before the body is read.
            r = await client.post(f"/api/v1/dossiers/{dossier['id']}/files", content=data, headers=headers)
            assert (r.status_code, r.json()["code"]) == (413, "file_too_large")

            # No announced length (chunked): refused once the stream passes the limit, after the
            # object store has already taken a part of it.
            async def chunks() -> AsyncIterator[bytes]:
                for i in range(0, len(data), 256 * 1024):
                    yield data[i : i + 256 * 1024]

            r = await client.post(f"/api/v1/dossiers/{dossier['id']}/files", content=chunks(), headers=headers)
            assert (r.status_code, r.json()["code"]) == (413, "file_too_large")
    assert await object_keys(api) == before
    view = await api.client.get(f"/api/v1/dossiers/{dossier['id']}", headers=auth(token))
    assert view.json()["files"] == []


async def test_same_idempotency_key_returns_the_same_file(api: Api, tree: Subtree) -> None:
    _, token = await api.account("operator", tree.commune(1))
    dossier = await api.dossier(token)
    first = await api.upload(token, dossier["id"], text_pdf(), headers={"Idempotency-Key": "scan-0001"})
    again = await api.upload(token, dossier["id"], text_pdf(), headers={"Idempotency-Key": "scan-0001"})
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert again.headers.get("idempotent-replayed") == "true"
    view = await api.client.get(f"/api/v1/dossiers/{dossier['id']}", headers=auth(token))
    assert len(view.json()["files"]) == 1


async def test_deleted_file_is_gone_for_readers(api: Api, tree: Subtree) -> None:
    _, token = await api.account("operator", tree.commune(1))
    dossier = await api.dossier(token)
    file_id = (await api.upload(token, dossier["id"], text_pdf())).json()["id"]
    r = await api.client.delete(f"/api/v1/files/{file_id}", headers=auth(token))
    assert r.status_code == 204
    assert (await api.client.get(f"/api/v1/files/{file_id}", headers=auth(token))).status_code == 404
    view = await api.client.get(f"/api/v1/dossiers/{dossier['id']}", headers=auth(token))
    assert view.json()["files"] == []


async def test_files_of_another_commune_are_not_found(api: Api, tree: Subtree) -> None:
    _, owner = await api.account("operator", tree.commune(1))
    _, other = await api.account("operator", tree.commune(2))
    dossier = await api.dossier(owner)
    file_id = (await api.upload(owner, dossier["id"], text_pdf())).json()["id"]
    for path in (f"/api/v1/files/{file_id}", f"/api/v1/files/{file_id}/content"):
        r = await api.client.get(path, headers=auth(other))
        assert r.status_code == 404
        assert r.json()["code"] == "file_not_found"
    r = await api.upload(other, dossier["id"], text_pdf())
    assert r.status_code == 404
    assert (await api.client.delete(f"/api/v1/files/{file_id}", headers=auth(other))).status_code == 404


async def test_object_store_down_is_503_with_retry_after_and_records_nothing(api: Api, tree: Subtree) -> None:
    from tests.conftest import make_client
    from tests.factories import free_port

    _, token = await api.account("operator", tree.commune(1))
    dossier = await api.dossier(token)
    dead = api.settings.model_copy(update={"s3_endpoint": f"127.0.0.1:{free_port()}"})
    async with make_client(dead) as client:
        r = await client.post(
            f"/api/v1/dossiers/{dossier['id']}/files",
            content=text_pdf(),
            headers={**auth(token), "Content-Type": "application/pdf", "X-File-Kind": "component"},
        )
    assert r.status_code == 503
    assert r.json()["code"] == "storage_unavailable"
    assert int(r.headers["retry-after"]) > 0
    view = await api.client.get(f"/api/v1/dossiers/{dossier['id']}", headers=auth(token))
    assert view.json()["files"] == []
