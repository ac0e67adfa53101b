"""Readiness names the dependency that stopped."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.conftest import make_client
from tests.factories import Api, free_port

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_ready_when_everything_answers(api: Api) -> None:
    r = await api.client.get("/health/ready")
    assert r.status_code == 200
    assert r.json()["checks"] == {"postgres": "ok", "redis": "ok", "object_store": "ok"}


async def test_ready_names_a_redis_that_stopped(api: Api, tmp_path: object) -> None:
    port = free_port()
    redis_server = shutil.which("redis-server") or "/usr/bin/redis-server"
    proc = subprocess.Popen(
        [redis_server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        own = api.settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{port}/0"})
        async with make_client(own) as client:
            for _ in range(50):
                if (await client.get("/health/ready")).status_code == 200:
                    break
            else:
                pytest.fail("test redis did not come up")
            proc.terminate()
            proc.wait(10)
            r = await client.get("/health/ready")
            assert r.status_code == 503
            assert r.json()["failing"] == ["redis"]
            assert r.headers["retry-after"]
    finally:
        if proc.poll() is None:
            proc.kill()


async def test_ready_names_an_object_store_that_does_not_answer(api: Api) -> None:
    own = api.settings.model_copy(update={"s3_endpoint": f"127.0.0.1:{free_port()}"})
    async with make_client(own) as client:
        r = await client.get("/health/ready")
        assert r.status_code == 503
        assert r.json()["failing"] == ["object_store"]
