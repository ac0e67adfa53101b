"""A presigned POST pinned to a SHA-256: the store takes only those bytes and shows what it checked."""

from __future__ import annotations

import hashlib
import io
import os

import httpx
import pytest

from storage import ObjectStoreUnavailable, Settings, object_store
from tests.factories import free_port, raw_s3

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_the_store_takes_only_the_pinned_bytes_and_the_probe_leaves_nothing(
    settings: Settings, prepared: object
) -> None:
    store = object_store(settings)
    s3 = raw_s3(settings)
    data = b"%PDF-1.7\n" + os.urandom(4000)
    other = data[:-1] + bytes([data[-1] ^ 1])
    try:
        assert await store.pins_post_checksums()
        left = list(s3.list_objects(bucket_name=store.bucket, prefix="incoming/checksum-probe-"))
        assert left == [], "the probe removes what it wrote"

        url, fields = store.presigned_post(
            "tests/pinned/one", size=len(data), ttl_seconds=60, sha256=hashlib.sha256(data).hexdigest()
        )
        async with httpx.AsyncClient(timeout=30) as http:
            refused = await http.post(url, data=fields, files={"file": ("x.pdf", other)})
            assert refused.status_code >= 400
            taken = await http.post(url, data=fields, files={"file": ("x.pdf", data)})
            assert taken.status_code < 300, taken.text
        assert await store.attested("tests/pinned/one") == (len(data), hashlib.sha256(data).hexdigest())
        assert await store.first_bytes("tests/pinned/one") == data[:1024]

        # Bytes written without a checksum carry none: they must be read to be known.
        s3.put_object(bucket_name=store.bucket, object_name="tests/pinned/two", data=io.BytesIO(data), length=len(data))
        assert await store.attested("tests/pinned/two") == (len(data), None)
    finally:
        for key in ("tests/pinned/one", "tests/pinned/two"):
            s3.remove_object(bucket_name=store.bucket, object_name=key)
        await store.aclose()


async def test_a_store_that_cannot_be_reached_is_asked_again_rather_than_judged(settings: Settings) -> None:
    down = object_store(settings.model_copy(update={"s3_endpoint": f"127.0.0.1:{free_port()}"}))
    try:
        with pytest.raises(ObjectStoreUnavailable):
            await down.pins_post_checksums()
        with pytest.raises(ObjectStoreUnavailable):
            await down.pins_post_checksums()
    finally:
        await down.aclose()
