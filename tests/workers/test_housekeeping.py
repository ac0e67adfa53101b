"""Housekeeping: abandoned sessions are aborted, orphan bytes removed, rotting blobs found."""

from __future__ import annotations

import hashlib
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from storage import Database, object_store
from tests.factories import Api, Subtree, auth
from tests.pdfs import text_pdf
from workers.housekeeping import check_fixity, expire_uploads, sweep_orphans

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture
async def ctx(api: Api) -> AsyncIterator[dict[str, Any]]:
    db = await Database.connect(api.settings.database_url, min_size=1, max_size=2)
    objects = object_store(api.settings)
    yield {"db": db, "objects": objects, "settings": api.settings.model_copy(update={"orphan_grace_seconds": 0})}
    await objects.aclose()
    await db.close()


async def test_an_abandoned_upload_session_is_aborted(api: Api, ctx: dict[str, Any], tree: Subtree) -> None:
    _, token = await api.account("operator", tree.commune(1))
    dossier = await api.dossier(token)
    data = text_pdf()
    r = await api.client.post(
        "/api/v1/uploads",
        json={
            "dossier_id": dossier["id"],
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "kind": "component",
        },
        headers=auth(token),
    )
    session = r.json()
    await api.db.pool.execute(
        "UPDATE upload_sessions SET expires_at = now() - interval '1 hour' WHERE id = $1", session["id"]
    )
    assert await expire_uploads(ctx) >= 1
    status = (await api.client.get(f"/api/v1/uploads/{session['id']}", headers=auth(token))).json()
    assert status["state"] == "expired"
    r = await api.client.put(f"/api/v1/uploads/{session['id']}/parts/1", content=data, headers=auth(token))
    assert (r.status_code, r.json()["code"]) == (409, "upload_not_open")


async def test_bytes_without_a_record_are_swept_and_recorded_ones_kept(
    api: Api, ctx: dict[str, Any], tree: Subtree
) -> None:
    _, token = await api.account("operator", tree.commune(1))
    dossier = await api.dossier(token)
    kept = (await api.upload(token, dossier["id"], text_pdf("giu lai"))).json()
    store = ctx["objects"]
    orphan = f"originals/{datetime.now(UTC):%Y/%m}/orphan-of-a-crash.pdf"

    async def one() -> AsyncIterator[bytes]:
        yield b"%PDF-1.4 left behind by a crash"

    await store.put_stream(orphan, one(), content_type="application/pdf", max_bytes=1024)
    assert await sweep_orphans(ctx) >= 1
    r = await api.client.get(f"/api/v1/files/{kept['id']}/content", headers=auth(token))
    assert r.status_code == 200
    keys = await store.older_than("originals/", datetime.now(UTC))
    assert orphan not in keys


async def test_fixity_records_verified_blobs_and_finds_a_changed_one(
    api: Api, ctx: dict[str, Any], tree: Subtree
) -> None:
    _, token = await api.account("operator", tree.commune(1))
    dossier = await api.dossier(token)
    good = (await api.upload(token, dossier["id"], text_pdf("nguyen ven"))).json()
    bad = (await api.upload(token, dossier["id"], text_pdf("se bi hong"))).json()
    key = await api.db.pool.fetchval("SELECT object_key FROM files WHERE id = $1", bad["id"])
    minio = ctx["objects"]._client
    damaged = b"%PDF-1.4 bit rot"
    minio.put_object(bucket_name=ctx["objects"].bucket, object_name=key, data=io.BytesIO(damaged), length=len(damaged))
    await api.db.pool.execute(
        "UPDATE blobs SET verified_at = NULL WHERE sha256 = ANY($1)", [good["sha256"], bad["sha256"]]
    )
    result = await check_fixity(ctx)
    assert result["failed"] >= 1
    rows = {
        r["sha256"]: r
        for r in await api.db.pool.fetch(
            "SELECT sha256, verified_at, fixity_failed_at, fixity_detail FROM blobs WHERE sha256 = ANY($1)",
            [good["sha256"], bad["sha256"]],
        )
    }
    assert rows[good["sha256"]]["verified_at"] is not None and rows[good["sha256"]]["fixity_failed_at"] is None
    assert rows[bad["sha256"]]["fixity_failed_at"] is not None
    assert "SHA-256" in rows[bad["sha256"]]["fixity_detail"]


async def test_the_worker_log_leaves_out_the_sweeps_that_run_every_few_seconds(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import logging

    from workers.main import _QuietSweeps

    arq = logging.getLogger("arq.worker.quiet-test")
    arq.addFilter(_QuietSweeps())
    with caplog.at_level(logging.INFO, logger="arq.worker.quiet-test"):
        arq.info("%6.2fs → %s(%s)%s", 0.01, "cron:requeue_stuck", "", "")  # as the job queue words them
        arq.info("%6.2fs ← %s ● %s", 0.02, "cron:requeue_stuck", "0")
        arq.info("recording health: %s", "Dec-03 20:40:00 j_complete=3 j_failed=0")
        arq.info("%6.2fs → %s(%s)%s", 0.05, "ab12:inspect_file", "'6f1c'", "")
        arq.info("%6.2fs ← %s ● %s", 0.02, "cron:sweep_orphans", "3")
        arq.error("%6.2fs ! %s failed", 0.02, "cron:requeue_stuck")
    assert [r.getMessage().split(maxsplit=2)[1:] for r in caplog.records] == [
        ["→", "ab12:inspect_file('6f1c')"],
        ["←", "cron:sweep_orphans ● 3"],
        ["!", "cron:requeue_stuck failed"],
    ]
