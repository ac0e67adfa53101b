"""A worker's child reads a stored file through a signed URL: whole, in one buffer, with clear faults."""

from __future__ import annotations

import asyncio
import io
import os
import tracemalloc

import pytest

from storage import ObjectNotFound, ObjectStoreUnavailable, ObjectTooLarge, Settings, fetch_signed, object_store
from tests.factories import free_port, raw_s3


def test_a_stored_file_is_fetched_whole_in_one_buffer_of_its_size(settings: Settings, prepared: object) -> None:
    data = os.urandom(24 * 1024 * 1024)
    store = object_store(settings)
    s3 = raw_s3(settings)
    s3.put_object(bucket_name=store.bucket, object_name="tests/fetch/big", data=io.BytesIO(data), length=len(data))
    try:
        url = store.signed_get("tests/fetch/big")
        tracemalloc.start()
        fetched = fetch_signed(url, read_timeout_seconds=10, max_bytes=len(data))
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert fetched == data
        # A file at the size limit must fit a child's memory limit: one copy of it, not two.
        assert peak < 1.25 * len(data), f"peak {peak / len(data):.2f} times the file"

        with pytest.raises(ObjectTooLarge):
            fetch_signed(url, read_timeout_seconds=10, max_bytes=len(data) - 1)
        with pytest.raises(ObjectNotFound):
            fetch_signed(store.signed_get("tests/fetch/none"), read_timeout_seconds=10, max_bytes=len(data))
        # The connection kept after the refusals still serves the next file correctly.
        assert fetch_signed(url, read_timeout_seconds=10, max_bytes=len(data)) == data
    finally:
        s3.remove_object(bucket_name=store.bucket, object_name="tests/fetch/big")
        asyncio.run(store.aclose())

    down = object_store(settings.model_copy(update={"s3_endpoint": f"127.0.0.1:{free_port()}"}))
    with pytest.raises(ObjectStoreUnavailable):
        fetch_signed(down.signed_get("tests/fetch/big"), read_timeout_seconds=2, max_bytes=len(data))
    asyncio.run(down.aclose())
