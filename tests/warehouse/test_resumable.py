"""Uploads that survive slow links and crashes: resumable sessions, direct uploads, replays, dedupe."""

from __future__ import annotations

import asyncio
import hashlib
import os
from typing import Any

import httpx
import pytest

from loadtests.pdfgen import scanned_pdf
from tests.factories import Api, LiveServer, Subtree, auth
from tests.pdfs import text_pdf

pytestmark = pytest.mark.asyncio(loop_scope="session")

PART = 5 * 1024 * 1024  # the smallest part S3 allows (the test settings' part size)


def big_pdf(mib: float = 11.5) -> bytes:
    """Starts like a PDF; only its size and bytes matter for the upload path."""
    return b"%PDF-1.4\n" + os.urandom(int(mib * 1024 * 1024)) + b"\n%%EOF\n"


def parts_of(data: bytes) -> list[bytes]:
    return [data[i : i + PART] for i in range(0, len(data), PART)]


async def start(client: Any, token: str, dossier_id: str, data: bytes, **more: Any) -> dict[str, Any]:
    body = {
        "dossier_id": dossier_id,
        "filename": "Sổ hộ khẩu.pdf",
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "kind": "component",
        **more,
    }
    r = await client.post("/api/v1/uploads", json=body, headers=auth(token))
    assert r.status_code == 201, r.text
    result: dict[str, Any] = r.json()
    return result


async def send(client: Any, token: str, session: dict[str, Any], n: int, data: bytes) -> httpx.Response:
    r: httpx.Response = await client.put(
        f"/api/v1/uploads/{session['id']}/parts/{n}", content=data, headers=auth(token)
    )
    return r


async def test_a_large_upload_resumes_after_the_api_is_killed(api: Api, tree: Subtree) -> None:
    _, token = await api.account("operator", tree.commune(1))
    dossier = await api.dossier(token)
    data = big_pdf()
    chunks = parts_of(data)
    env = {"WAREHOUSE_UPLOAD_PART_BYTES": str(PART)}
    with LiveServer(**env) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            session = await start(client, token, dossier["id"], data)
            assert (session["part_size"], session["parts"]) == (PART, 3)
            assert (await send(client, token, session, 1, chunks[0])).status_code == 200
            # Part 2 goes out over a raw connection and stops halfway, as a crawling link does.
            _, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(
                (
                    f"PUT /api/v1/uploads/{session['id']}/parts/2 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    f"Authorization: Bearer {token}\r\nContent-Length: {PART}\r\n\r\n"
                ).encode()
                + chunks[1][: PART // 2]
            )
            await writer.drain()
            await asyncio.sleep(0.5)
            server.crash()  # the API dies with part 2 half received, as a power cut would
            writer.close()
    with LiveServer(**env) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            status = (await client.get(f"/api/v1/uploads/{session['id']}", headers=auth(token))).json()
            assert ([p["n"] for p in status["received"]], status["missing"]) == ([1], [2, 3])
            assert status["received"][0]["sha256"] == hashlib.sha256(chunks[0]).hexdigest()
            for n in status["missing"]:
                assert (await send(client, token, session, n, chunks[n - 1])).status_code == 200
            r = await client.post(f"/api/v1/uploads/{session['id']}/complete", headers=auth(token))
            assert r.status_code == 201, r.text
            f = r.json()
            assert (f["size"], f["sha256"], f["name"]) == (
                len(data),
                hashlib.sha256(data).hexdigest(),
                "Sổ hộ khẩu.pdf",
            )
            content = await client.get(f"/api/v1/files/{f['id']}/content", headers=auth(token))
            assert content.content == data


async def test_parts_are_checked_and_complete_names_what_is_missing(api: Api, tree: Subtree) -> None:
    _, token = await api.account("operator", tree.commune(1))
    dossier = await api.dossier(token)
    data = big_pdf()
    chunks = parts_of(data)
    client = api.client
    session = await start(client, token, dossier["id"], data)
    sid = session["id"]

    r = await send(client, token, session, 1, chunks[0][:-1])
    assert (r.status_code, r.json()["code"]) == (422, "part_size_mismatch")
    r = await send(client, token, session, 4, chunks[0])
    assert (r.status_code, r.json()["code"]) == (422, "invalid_part_number")
    r = await client.put(
        f"/api/v1/uploads/{sid}/parts/1", content=chunks[0], headers={**auth(token), "X-Content-SHA256": "0" * 64}
    )
    assert (r.status_code, r.json()["code"]) == (422, "checksum_mismatch")

    assert (await send(client, token, session, 1, chunks[0])).status_code == 200
    assert (await send(client, token, session, 3, chunks[2])).status_code == 200
    r = await client.post(f"/api/v1/uploads/{sid}/complete", headers=auth(token))
    assert (r.status_code, r.json()["code"], r.json()["missing"]) == (409, "parts_missing", [2])

    # A part sent again replaces the first copy (a wrong part can be corrected).
    assert (await send(client, token, session, 2, os.urandom(PART))).status_code == 200
    assert (await send(client, token, session, 2, chunks[1])).status_code == 200
    first = await client.post(f"/api/v1/uploads/{sid}/complete", headers=auth(token))
    assert first.status_code == 201, first.text
    again = await client.post(f"/api/v1/uploads/{sid}/complete", headers=auth(token))
    assert (again.status_code, again.json()["id"]) == (201, first.json()["id"])
    assert again.headers.get("idempotent-replayed") == "true"
    view = await client.get(f"/api/v1/dossiers/{dossier['id']}", headers=auth(token))
    assert [f["id"] for f in view.json()["files"]] == [first.json()["id"]]
    r = await send(client, token, session, 1, chunks[0])
    assert (r.status_code, r.json()["code"]) == (409, "upload_not_open")


async def test_a_whole_file_checksum_mismatch_records_nothing(api: Api, tree: Subtree) -> None:
    _, token = await api.account("operator", tree.commune(1))
    dossier = await api.dossier(token)
    data = text_pdf()
    session = await start(api.client, token, dossier["id"], data, sha256=hashlib.sha256(b"other").hexdigest())
    assert session["parts"] == 1
    assert (await send(api.client, token, session, 1, data)).status_code == 200
    r = await api.client.post(f"/api/v1/uploads/{session['id']}/complete", headers=auth(token))
    assert (r.status_code, r.json()["code"]) == (422, "checksum_mismatch")
    view = await api.client.get(f"/api/v1/dossiers/{dossier['id']}", headers=auth(token))
    assert view.json()["files"] == []
    status = (await api.client.get(f"/api/v1/uploads/{session['id']}", headers=auth(token))).json()
    assert status["state"] == "failed"


async def test_sessions_belong_to_their_account(api: Api, tree: Subtree) -> None:
    _, token = await api.account("operator", tree.commune(1))
    _, other = await api.account("operator", tree.commune(1))
    dossier = await api.dossier(token)
    session = await start(api.client, token, dossier["id"], text_pdf())
    r = await api.client.get(f"/api/v1/uploads/{session['id']}", headers=auth(other))
    assert (r.status_code, r.json()["code"]) == (404, "upload_not_found")
    r = await api.client.delete(f"/api/v1/uploads/{session['id']}", headers=auth(token))
    assert r.status_code == 204
    r = await send(api.client, token, session, 1, text_pdf())
    assert (r.status_code, r.json()["code"]) == (409, "upload_not_open")


async def test_a_direct_upload_to_the_store_is_checked_before_it_is_recorded(api: Api, tree: Subtree) -> None:
    _, token = await api.account("operator", tree.commune(1))
    dossier = await api.dossier(token)
    data = scanned_pdf(pages=1, dpi=100, seed=21)
    session = await start(api.client, token, dossier["id"], data, mode="direct")
    direct = session["direct"]
    async with httpx.AsyncClient(timeout=60) as s3:
        # More bytes than declared: the store refuses them (the policy fixes the size).
        refused = await s3.post(direct["url"], data=direct["fields"], files={"file": ("x.pdf", data + b"x")})
        assert refused.status_code >= 400
        r = await api.client.post(f"/api/v1/uploads/{session['id']}/complete", headers=auth(token))
        assert (r.status_code, r.json()["code"]) == (409, "upload_missing")
        stored = await s3.post(direct["url"], data=direct["fields"], files={"file": ("x.pdf", data)})
        assert stored.status_code < 300, stored.text
    r = await api.client.post(f"/api/v1/uploads/{session['id']}/complete", headers=auth(token))
    assert r.status_code == 201, r.text
    assert r.json()["sha256"] == hashlib.sha256(data).hexdigest()


async def test_identical_bytes_are_stored_once_and_found_only_within_scope(
    api: Api, tree: Subtree, tree2: Subtree
) -> None:
    from tests.warehouse.test_files import object_keys

    _, token = await api.account("operator", tree.commune(1))
    _, stranger = await api.account("operator", tree2.commune(1))
    data = scanned_pdf(pages=1, dpi=100, seed=33)
    digest = hashlib.sha256(data).hexdigest()
    first_dossier, second_dossier = await api.dossier(token), await api.dossier(token)
    before = await object_keys(api)
    a = await api.upload(token, first_dossier["id"], data)
    b = await api.upload(token, second_dossier["id"], data, headers={"X-Content-SHA256": digest})
    c = await api.upload(token, second_dossier["id"], data)
    assert a.status_code == b.status_code == c.status_code == 201
    assert len({a.json()["id"], b.json()["id"], c.json()["id"]}) == 3
    assert len(await object_keys(api) - before) == 1, "the bytes are stored once"

    # Deleting one file leaves the bytes for the others.
    assert (await api.client.delete(f"/api/v1/files/{a.json()['id']}", headers=auth(token))).status_code == 204
    r = await api.client.get(f"/api/v1/files/{c.json()['id']}/content", headers=auth(token))
    assert r.content == data

    mine = await api.client.get("/api/v1/files", params={"sha256": digest}, headers=auth(token))
    assert {f["id"] for f in mine.json()["items"]} == {b.json()["id"], c.json()["id"]}
    theirs = await api.client.get("/api/v1/files", params={"sha256": digest}, headers=auth(stranger))
    assert theirs.json()["items"] == [], "never across units"


async def test_idempotency_keys_replay_creations_and_refuse_other_bodies(api: Api, tree: Subtree) -> None:
    _, token = await api.account("operator", tree.commune(1))
    body = {
        "procedure_code": "1.002891.000.00.00.H40",
        "subject": {"name": "Hoàng Thị Mai", "id_kind": "cccd", "id_number": "020190000777"},
    }
    headers = {**auth(token), "Idempotency-Key": "dossier-0001"}
    first = await api.client.post("/api/v1/dossiers", json=body, headers=headers)
    again = await api.client.post("/api/v1/dossiers", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert again.headers.get("idempotent-replayed") == "true"
    other = await api.client.post("/api/v1/dossiers", json={**body, "title": "khác"}, headers=headers)
    assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused")
    listing = await api.client.get("/api/v1/dossiers", params={"subject_id": "020190000777"}, headers=auth(token))
    assert len(listing.json()["items"]) == 1

    # Uploads: the same key with other bytes is refused too.
    dossier = await api.dossier(token)
    up = await api.upload(token, dossier["id"], text_pdf("mot"), headers={"Idempotency-Key": "scan-9"})
    assert up.status_code == 201
    r = await api.upload(token, dossier["id"], text_pdf("hai"), headers={"Idempotency-Key": "scan-9"})
    assert (r.status_code, r.json()["code"]) == (422, "idempotency_key_reused")


async def test_a_key_whose_first_request_died_with_its_process_is_answered_on_a_retry(api: Api, tree: Subtree) -> None:
    """The API process answering the first request was killed after claiming the key: a retry is told
    to wait (409, Retry-After) while that request could still be running, then takes the key over."""
    import hashlib
    import json

    login, token = await api.account("operator", tree.commune(1))
    account_id = await api.db.pool.fetchval("SELECT id FROM accounts WHERE login = $1", login)
    body = json.dumps(
        {
            "procedure_code": "1.002891.000.00.00.H40",
            "subject": {"name": "Lò Văn Quý", "id_kind": "cccd", "id_number": "020190000778"},
        }
    ).encode()
    digest = hashlib.sha256(b"/api/v1/dossiers\0" + body).hexdigest()
    await api.db.pool.execute(  # the claim the killed process left
        "INSERT INTO idempotency_keys (account_id, key, endpoint, request_sha256) VALUES ($1, $2, $3, $4)",
        account_id,
        "dossier-cut-0001",
        "POST /api/v1/dossiers",
        digest,
    )
    headers = {**auth(token), "Idempotency-Key": "dossier-cut-0001", "Content-Type": "application/json"}
    r = await api.client.post("/api/v1/dossiers", content=body, headers=headers)
    assert (r.status_code, r.json()["code"], r.headers["retry-after"]) == (409, "idempotency_in_progress", "1")

    await api.db.pool.execute(
        "UPDATE idempotency_keys SET created_at = created_at - make_interval(secs => $3) "
        "WHERE account_id = $1 AND key = $2",
        account_id,
        "dossier-cut-0001",
        api.settings.idempotency_claim_seconds + 1,
    )
    first = await api.client.post("/api/v1/dossiers", content=body, headers=headers)
    assert first.status_code == 201, first.text
    again = await api.client.post("/api/v1/dossiers", content=body, headers=headers)
    assert again.json()["id"] == first.json()["id"] and again.headers.get("idempotent-replayed") == "true"
    other = await api.client.post("/api/v1/dossiers", content=body.replace(b"Q", b"K"), headers=headers)
    assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused")


async def test_provisioning_with_the_same_key_answers_the_same_accounts(api: Api) -> None:
    admin = await api.admin()
    body = {"parent_unit_code": "000.00.31.HXX", "level": "commune", "per_unit": 1, "role": "viewer"}
    headers = {**auth(admin), "Idempotency-Key": "provision-31-viewers"}
    first = await api.client.post("/api/v1/accounts/provision", json=body, headers=headers)
    again = await api.client.post("/api/v1/accounts/provision", json=body, headers=headers)
    assert first.status_code == again.status_code
    assert first.json()["accounts"], "the first call made accounts"
    assert again.json() == first.json(), "the lost answer (with its one-time passwords) is given again"
    assert again.headers.get("idempotent-replayed") == "true"
