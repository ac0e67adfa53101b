"""Originals under the store's object lock: once a file is accepted its bytes are locked until a date that
nobody, the warehouse included, can bring forward (SeaweedFS enforces compliance mode, as MinIO does)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from storage import Database, Settings, object_store
from tests.conftest import make_client
from tests.factories import Api, Subtree
from tests.pdfs import _one_text_page, build_pdf
from workers.housekeeping import lock_originals

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture(scope="module")
def locking(prepared: Settings) -> Settings:
    # a bucket of its own, made with object lock (a lock cannot be added to an existing bucket)
    return prepared.model_copy(
        update={"s3_bucket": "warehouse-test-locked", "s3_object_lock": "compliance", "s3_object_lock_years": 1}
    )


@pytest.fixture(scope="module")
async def locked_client(locking: Settings) -> AsyncIterator[AsyncTestClient[Litestar]]:
    store = object_store(locking)
    await store.ensure_bucket(object_lock=True)
    await store.aclose()
    async with make_client(locking) as client:
        yield client


async def test_an_accepted_original_is_locked_and_its_lock_cannot_be_shortened(
    locked_client: AsyncTestClient[Litestar], db: Database, locking: Settings, tree: Subtree
) -> None:
    api = Api(locked_client, db, locking)
    _, operator = await api.account("operator", tree.commune(1))
    d = await api.dossier(operator)
    data = build_pdf(_one_text_page(b"BT /F1 12 Tf 100 700 Td (locked %s) Tj ET" % str(d["id"]).encode()))
    r = await api.upload(operator, d["id"], data)
    assert r.status_code == 201, r.text
    await api.run_worker(locking)
    assert (await api.file(operator, r.json()["id"]))["state"] == "ready"

    store = object_store(locking)
    try:
        ctx = {"settings": locking, "objects": store, "db": db}
        assert await lock_originals(ctx) >= 1
        key, locked_until = await db.pool.fetchrow(
            "SELECT b.object_key, b.locked_until FROM files f JOIN blobs b ON b.sha256 = f.sha256 WHERE f.id = $1",
            UUID(r.json()["id"]),
        )
        assert locked_until > datetime.now(UTC) + timedelta(days=360)
        mode, until = await store.retention(key) or ("none", None)
        assert mode == "compliance" and until is not None and until > datetime.now(UTC) + timedelta(days=360)
        with pytest.raises(Exception, match="AccessDenied"):  # not even the warehouse may bring it forward
            await store.lock(key, mode="compliance", until=datetime.now(UTC) + timedelta(days=1))
        assert await lock_originals(ctx) == 0  # each original is locked once
    finally:
        await store.aclose()
