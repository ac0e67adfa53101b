"""Attacks a hostile commune would try, each one a regression test of a hole found from outside."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import pytest

from loadtests.pdfgen import scanned_pdf
from tests.factories import Api, auth, commune, raw_s3
from tests.pdfs import javascript_pdf

pytestmark = pytest.mark.asyncio(loop_scope="session")


def same_size(data: bytes, size: int) -> bytes:
    """``data`` padded with a PDF comment to exactly ``size`` bytes (readers ignore what follows %%EOF)."""
    assert len(data) <= size
    return data + b"%" * (size - len(data))


async def direct_session(api: Api, token: str, dossier_id: str, data: bytes) -> dict[str, Any]:
    body = {
        "dossier_id": dossier_id,
        "filename": "giay-to.pdf",
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "kind": "component",
        "mode": "direct",
    }
    r = await api.client.post("/api/v1/uploads", json=body, headers=auth(token))
    assert r.status_code == 201, r.text
    session: dict[str, Any] = r.json()
    return session


async def test_a_direct_upload_policy_cannot_change_bytes_after_completion(api: Api) -> None:
    """Commune A completes a direct upload; commune B uploads the same bytes (deduplicated to A's
    object); A posts other bytes with its old policy. Nothing either commune downloads changes."""
    _, a = await api.account("operator", commune(31, 1))
    _, b = await api.account("operator", commune(31, 2))
    original = scanned_pdf(pages=1, dpi=100, seed=151)
    hostile = same_size(javascript_pdf(), len(original))
    dossier_a = await api.dossier(a)
    session = await direct_session(api, a, dossier_a["id"], original)
    direct = session["direct"]
    assert not direct["fields"]["key"].startswith("originals/"), "the client never holds a file's own key"
    async with httpx.AsyncClient(timeout=60) as s3:
        posted = await s3.post(direct["url"], data=direct["fields"], files={"file": ("x.pdf", original)})
        assert posted.status_code < 300, posted.text
        r = await api.client.post(f"/api/v1/uploads/{session['id']}/complete", headers=auth(a))
        assert r.status_code == 201, r.text
        file_a = r.json()
        dossier_b = await api.dossier(b)
        r = await api.upload(b, dossier_b["id"], original)
        assert r.status_code == 201, r.text
        file_b = r.json()
        # The same policy again, with other bytes of the same size.
        await s3.post(direct["url"], data=direct["fields"], files={"file": ("x.pdf", hostile)})
    for token, f in ((a, file_a), (b, file_b)):
        r = await api.client.get(f"/api/v1/files/{f['id']}/content", headers=auth(token))
        assert r.status_code == 200
        assert r.content == original
        redirect = await api.client.get(
            f"/api/v1/files/{f['id']}/content?redirect=1", headers=auth(token), follow_redirects=False
        )
        async with httpx.AsyncClient(timeout=60) as s3:
            assert (await s3.get(redirect.headers["location"])).content == original
    # Completing again answers with the same file; the hostile bytes are nowhere under a record.
    r = await api.client.post(f"/api/v1/uploads/{session['id']}/complete", headers=auth(a))
    assert r.status_code == 201 and r.json()["id"] == file_a["id"]
    key = await api.db.pool.fetchval("SELECT object_key FROM files WHERE id = $1", file_a["id"])
    stored = raw_s3(api.settings).get_object(bucket_name=api.settings.s3_bucket, object_name=key)
    try:
        assert stored.read() == original
    finally:
        stored.close()
        stored.release_conn()


async def test_a_direct_policy_lives_minutes_and_the_status_hands_out_a_fresh_one(api: Api) -> None:
    import base64
    import json
    from datetime import UTC, datetime

    _, token = await api.account("operator", commune(31, 3))
    dossier = await api.dossier(token)
    data = scanned_pdf(pages=1, dpi=100, seed=152)
    session = await direct_session(api, token, dossier["id"], data)
    policy = json.loads(base64.b64decode(session["direct"]["fields"]["policy"]))
    expires = datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00"))
    lifetime = (expires - datetime.now(UTC)).total_seconds()
    assert 0 < lifetime <= api.settings.direct_upload_ttl_seconds + 5
    r = await api.client.get(f"/api/v1/uploads/{session['id']}", headers=auth(token))
    assert r.status_code == 200 and r.json()["direct"]["fields"]["key"] == session["direct"]["fields"]["key"]
    async with httpx.AsyncClient(timeout=60) as s3:
        fresh = r.json()["direct"]
        assert (await s3.post(fresh["url"], data=fresh["fields"], files={"file": ("x.pdf", data)})).status_code < 300
    r = await api.client.post(f"/api/v1/uploads/{session['id']}/complete", headers=auth(token))
    assert r.status_code == 201, r.text
    r = await api.client.get(f"/api/v1/uploads/{session['id']}", headers=auth(token))
    assert r.json()["state"] == "completed" and r.json()["direct"] is None


async def test_a_download_is_cut_off_when_the_stored_bytes_changed_under_the_record(api: Api) -> None:
    _, token = await api.account("operator", commune(31, 4))
    dossier = await api.dossier(token)
    original = scanned_pdf(pages=1, dpi=100, seed=153)
    r = await api.upload(token, dossier["id"], original)
    assert r.status_code == 201
    key = await api.db.pool.fetchval("SELECT object_key FROM files WHERE id = $1", r.json()["id"])
    import io

    tampered = same_size(javascript_pdf(), len(original))
    raw_s3(api.settings).put_object(
        bucket_name=api.settings.s3_bucket, object_name=key, data=io.BytesIO(tampered), length=len(tampered)
    )
    try:
        got = await api.client.get(f"/api/v1/files/{r.json()['id']}/content", headers=auth(token))
    except Exception:  # the body was cut off: the client has no complete file
        return
    assert got.content != tampered and len(got.content) < len(tampered)
