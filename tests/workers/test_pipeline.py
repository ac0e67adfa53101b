"""The pipeline is visible: stages with times, a dead-letter list after transient faults, reprocessing."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from loadtests.pdfgen import scanned_pdf
from tests.factories import Api, Subtree, auth, free_port

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_a_file_that_cannot_be_fetched_is_parked_as_failed_and_an_admin_sends_it_back(
    api: Api, tree: Subtree
) -> None:
    _, token = await api.account("operator", tree.commune(1))
    dossier = await api.dossier(token)
    file_id = (await api.upload(token, dossier["id"], scanned_pdf(pages=1, dpi=200, seed=9))).json()["id"]
    f = await api.file(token, file_id)
    assert (f["state"], f["pipeline"]["stage"]) == ("processing", "queued")

    store_down = api.settings.model_copy(
        update={"s3_endpoint": f"127.0.0.1:{free_port()}", "worker_job_tries": 1, "ocr_enabled": False}
    )
    await api.run_worker(store_down)
    f = await api.file(token, file_id)
    assert (f["state"], f["pipeline"]["stage"], f["pipeline"]["attempts"]) == ("processing", "failed", 1)
    assert "object store unavailable" in f["pipeline"]["last_error"]

    admin = await api.admin()
    r = await api.client.get("/api/v1/pipeline/failed", headers=auth(admin))
    assert file_id in [x["id"] for x in r.json()["items"]]
    status = (await api.client.get("/api/v1/pipeline", headers=auth(admin))).json()
    assert status["stages"].get("failed", 0) >= 1
    assert set(status["queues"]) == {"warehouse:inspect", "warehouse:ocr"}

    # An operator may not reprocess; an admin may, and the file goes through again.
    r = await api.client.post(f"/api/v1/files/{file_id}/reprocess", headers=auth(token))
    assert (r.status_code, r.json()["code"]) == (403, "forbidden")
    r = await api.client.post(f"/api/v1/files/{file_id}/reprocess", headers=auth(admin))
    assert r.status_code == 202, r.text
    assert r.json()["pipeline"]["stage"] == "queued"
    await api.run_worker(api.settings.model_copy(update={"ocr_enabled": False}))
    f = await api.file(token, file_id)
    assert (f["state"], f["pipeline"]["stage"]) == ("ready", "ready")
    assert file_id not in [
        x["id"] for x in (await api.client.get("/api/v1/pipeline/failed", headers=auth(admin))).json()["items"]
    ]


@contextmanager
def stalling_store() -> Iterator[str]:
    """An object store that answers a GET with its headers and a few bytes, then goes quiet."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        held = []
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3000000\r\n\r\n%PDF-1.4\n")
            held.append(conn)  # open, silent
        for conn in held:
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        server.close()


async def test_a_store_too_slow_to_fetch_from_is_a_transient_fault_not_a_rejection(api: Api, tree: Subtree) -> None:
    _, token = await api.account("operator", tree.commune(1))
    dossier = await api.dossier(token)
    file_id = (await api.upload(token, dossier["id"], scanned_pdf(pages=1, dpi=200, seed=10))).json()["id"]
    with stalling_store() as endpoint:
        slow_store = api.settings.model_copy(
            update={"s3_endpoint": endpoint, "inspect_fetch_timeout_seconds": 1, "worker_job_tries": 1}
        )
        started = time.monotonic()
        await api.run_worker(slow_store)
        assert time.monotonic() - started < 15
    f = await api.file(token, file_id)
    assert (f["state"], f["pipeline"]["stage"]) == ("processing", "failed"), f
    assert "object store unavailable" in f["pipeline"]["last_error"]


async def test_a_file_whose_bytes_are_gone_from_the_store_is_rejected_as_missing(api: Api, tree: Subtree) -> None:
    from storage import object_store

    _, token = await api.account("operator", tree.commune(1))
    dossier = await api.dossier(token)
    file_id = (await api.upload(token, dossier["id"], scanned_pdf(pages=1, dpi=200, seed=11))).json()["id"]
    key = await api.db.pool.fetchval("SELECT object_key FROM files WHERE id = $1", file_id)
    store = object_store(api.settings)
    await store.delete(key)
    await store.aclose()
    await api.run_worker()
    f = await api.file(token, file_id)
    assert (f["state"], f["reason_code"]) == ("rejected", "content_missing")
    assert f["inspection"]["reason_vi"]


async def test_the_pipeline_status_is_for_admins(api: Api, tree: Subtree) -> None:
    _, token = await api.account("operator", tree.commune(1))
    r = await api.client.get("/api/v1/pipeline", headers=auth(token))
    assert (r.status_code, r.json()["code"]) == (403, "forbidden")
