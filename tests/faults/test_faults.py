"""Faults in the backing services, on instances this test starts and stops itself (never the machine's).

Postgres, Redis and SeaweedFS are started in a temporary folder on free ports, the API runs as a real
process against them, and each service is stopped and started again under it.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import httpx
import pytest

from loadtests.pdfgen import scanned_pdf
from storage import Settings
from tests.factories import ADMIN_PASSWORD, LiveServer, auth, free_port
from warehouse.local_services import LocalServices

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture(scope="module")
def own(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalServices, dict[str, str]]]:
    data = tmp_path_factory.mktemp("own-services")
    os.chmod(data, 0o755)  # the postgres user must reach its data folder
    env = {
        "WAREHOUSE_DATA_DIR": str(data),
        "WAREHOUSE_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/warehouse_faults",
        "WAREHOUSE_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
        "WAREHOUSE_S3_ENDPOINT": f"127.0.0.1:{free_port()}",
        "WAREHOUSE_S3_BUCKET": "warehouse-faults",
        "WAREHOUSE_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "WAREHOUSE_SECRET_KEY": "faults-" + "k" * 40,
        "WAREHOUSE_RATE_ACCOUNT_RPS": "100000",  # the test's own load is faster than a person
        "WAREHOUSE_RATE_UNIT_RPS": "100000",
    }
    services = LocalServices(Settings(**{k.removeprefix("WAREHOUSE_").lower(): v for k, v in env.items()}))
    try:
        services.up()
        full = {**os.environ, **env}
        for step in ("migrate", "seed"):
            subprocess.run([sys.executable, "-m", "warehouse", step], env=full, check=True, stdout=subprocess.DEVNULL)
        yield services, env
    finally:
        services.down(grace_seconds=3)  # a throwaway data folder


@pytest.fixture(scope="module")
async def served(own: tuple[LocalServices, dict[str, str]]) -> AsyncIterator[tuple[httpx.AsyncClient, str, str]]:
    _, env = own
    with LiveServer(**env) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            r = await client.post("/api/v1/auth/login", json={"login": "admin", "password": ADMIN_PASSWORD})
            token = r.json()["access_token"]
            d = await client.post(
                "/api/v1/dossiers",
                json={
                    "procedure_code": "1.002891",
                    "subject": {"name": "Lý Văn Sơn", "id_kind": "cccd", "id_number": "020190000001"},
                },
                headers=auth(token),
            )
            assert d.status_code == 201, d.text
            yield client, token, d.json()["id"]


async def files_recorded(env: dict[str, str]) -> int:
    conn = await asyncpg.connect(env["WAREHOUSE_DATABASE_URL"])
    try:
        return int(await conn.fetchval("SELECT count(*) FROM files"))
    finally:
        await conn.close()


def upload_headers(token: str) -> dict[str, str]:
    return {**auth(token), "Content-Type": "application/pdf", "X-File-Kind": "component"}


async def test_object_store_down_is_a_503_that_records_nothing(
    own: tuple[LocalServices, dict[str, str]], served: Any
) -> None:
    services, env = own
    client, token, dossier = served
    before = await files_recorded(env)
    services.down(only={"s3"}, grace_seconds=3)  # the store fails as a crashed node does
    try:
        r = await client.post(
            f"/api/v1/dossiers/{dossier}/files", content=scanned_pdf(1, 100), headers=upload_headers(token)
        )
        assert r.status_code == 503, r.text
        assert r.headers.get("retry-after")
        assert r.json()["code"]
        assert await files_recorded(env) == before
    finally:
        services.up()
    r = await client.post(
        f"/api/v1/dossiers/{dossier}/files", content=scanned_pdf(1, 100), headers=upload_headers(token)
    )
    assert r.status_code == 201, r.text


async def test_a_postgres_restart_under_load_is_survived_without_restarting_the_api(
    own: tuple[LocalServices, dict[str, str]], served: Any
) -> None:
    services, _ = own
    client, token, _ = served
    statuses: list[int] = []
    stop = asyncio.Event()

    async def load() -> None:
        while not stop.is_set():
            try:
                r = await client.get("/api/v1/dossiers", headers=auth(token))
                statuses.append(r.status_code)
            except httpx.TransportError:
                statuses.append(0)
            await asyncio.sleep(0.02)

    task = asyncio.create_task(load())
    await asyncio.sleep(0.5)
    await asyncio.to_thread(services.down, {"postgres"})
    await asyncio.sleep(1)
    await asyncio.to_thread(services.up)
    await asyncio.sleep(1.5)
    stop.set()
    await task
    assert set(statuses) <= {200, 503}, f"only answers or 503 while the database restarts: {sorted(set(statuses))}"
    assert 503 in statuses, "the restart was seen"
    assert statuses[-5:] == [200] * 5, "serving again after the restart, same API process"


async def test_with_redis_down_uploads_land_and_are_inspected_when_it_returns(
    own: tuple[LocalServices, dict[str, str]], served: Any
) -> None:
    services, env = own
    client, token, dossier = served
    services.down(only={"redis"}, grace_seconds=3)
    try:
        r = await client.post(
            f"/api/v1/dossiers/{dossier}/files", content=scanned_pdf(1, 200), headers=upload_headers(token)
        )
        assert r.status_code == 201, r.text
        file_id = r.json()["id"]
    finally:
        services.up()
    worker = subprocess.Popen(
        [sys.executable, "-m", "workers"],
        env={**os.environ, **env, "WAREHOUSE_OCR_ENABLED": "false"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(150):
            f = (await client.get(f"/api/v1/files/{file_id}", headers=auth(token))).json()
            if f["state"] != "processing":
                break
            await asyncio.sleep(0.2)
        assert f["state"] == "ready", f
    finally:
        worker.terminate()
        worker.wait(30)


async def test_a_store_that_stops_answering_is_not_waited_on_and_is_used_again_once_back(
    own: tuple[LocalServices, dict[str, str]], served: Any
) -> None:
    """The store hangs (its process stopped): uploads answer 503 within the request budget, then at once
    while the breaker is open; what does not need the store goes on; once the store is back, uploads
    land again."""
    import signal
    import time

    services, env = own
    _, token, dossier = served
    pid = services._running_pid("seaweedfs")
    assert pid is not None
    quick = {**env, "WAREHOUSE_S3_REQUEST_SECONDS": "2", "WAREHOUSE_S3_BREAKER_FAILURES": "3"}
    with LiveServer(**quick, WAREHOUSE_S3_BREAKER_SECONDS="5") as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            os.kill(pid, signal.SIGSTOP)
            try:
                took = []
                for _ in range(6):
                    started = time.monotonic()
                    r = await client.post(
                        f"/api/v1/dossiers/{dossier}/files", content=scanned_pdf(1, 100), headers=upload_headers(token)
                    )
                    took.append(time.monotonic() - started)
                    assert r.status_code == 503 and r.headers.get("retry-after"), r.text
                assert max(took) < 8, f"an upload waited {max(took):.1f} s for a store that does not answer"
                assert took[-1] < 0.5, "the breaker is open: the store is not asked"
                started = time.monotonic()
                assert (await client.get("/health/live")).status_code == 200
                assert (await client.get("/api/v1/dossiers", headers=auth(token))).status_code == 200
                assert (await client.get("/health/ready")).status_code == 503
                assert time.monotonic() - started < 3, "what does not need the store is not held up"
            finally:
                os.kill(pid, signal.SIGCONT)
            deadline = time.monotonic() + 30
            while True:  # after the breaker's pause the store is asked again
                r = await client.post(
                    f"/api/v1/dossiers/{dossier}/files", content=scanned_pdf(1, 100), headers=upload_headers(token)
                )
                if r.status_code == 201 or time.monotonic() > deadline:
                    break
                await asyncio.sleep(1)
            assert r.status_code == 201, r.text
            assert (await client.get("/health/ready")).status_code == 200


async def test_readiness_fails_for_a_store_that_answers_but_takes_no_writes(
    own: tuple[LocalServices, dict[str, str]],
) -> None:
    """The store answers, but the warehouse's bucket takes nothing (here: it does not exist)."""
    _, env = own
    with LiveServer(**{**env, "WAREHOUSE_S3_BUCKET": "no-such-bucket"}) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            r = await client.get("/health/ready")
    assert r.status_code == 503 and r.json()["failing"] == ["object_store"], r.text


async def test_the_local_store_holds_many_buckets(own: tuple[LocalServices, dict[str, str]]) -> None:
    """Each bucket takes volumes of its own; the local server must not run out of them after a few."""
    import io

    from minio import Minio

    _, env = own
    s3 = Minio(
        endpoint=env["WAREHOUSE_S3_ENDPOINT"], access_key="warehouse", secret_key="warehouse-local-secret", secure=False
    )
    for i in range(16):
        bucket = f"many-{i}"
        if not s3.bucket_exists(bucket_name=bucket):
            s3.make_bucket(bucket_name=bucket)
        s3.put_object(bucket_name=bucket, object_name="a.pdf", data=io.BytesIO(b"%PDF-1.4\n"), length=9)
