"""Small factories: accounts, tokens, dossiers and uploads, made through the real API and services."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import redis.asyncio as aioredis
from litestar import Litestar
from litestar.testing import AsyncTestClient
from minio import Minio

from loadtests.harness import LiveApi, free_port
from storage import Accounts, Database, Queue, Settings, drain_safely
from storage import Settings as _Settings
from storage.queue import OCR_QUEUE_NAME
from warehouse.security import Passwords
from warehouse.seed import org_code
from workers import build_worker

ADMIN_PASSWORD = "mat-khau-quan-tri-thu-nghiem"
PASSWORD = "mat-khau-thu-nghiem-1"
_serial = itertools.count(1)
# Hashing is slow on purpose; all test accounts share one hash of PASSWORD.
_PASSWORD_HASH = Passwords.from_settings(_Settings()).hash(PASSWORD)


def commune(district: int = 21, number: int = 1, suffix: str = "HXX") -> str:
    """Code of a seeded commune: district 21 is TP Lạng Sơn (8 communes), 22 Tràng Định (22), ..."""
    return org_code(suffix, third=number, second=district)


def district(number: int = 21, suffix: str = "HXX") -> str:
    return org_code(suffix, second=number)


def province(suffix: str = "HXX") -> str:
    return org_code(suffix)


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


_subtrees = itertools.count(1)


@dataclass(frozen=True)
class Subtree:
    """A district of one test's own, with its communes, under the province: codes no other test uses,
    so a test needs no hand-picked codes (``000.00.01.T0007`` and ``000.NN.01.T0007``)."""

    district: str
    communes: list[str]

    def commune(self, n: int = 1) -> str:
        return self.communes[n - 1]


async def new_subtree(db: Database, communes: int = 3, *, placeholder: bool = False) -> Subtree:
    from storage import Units

    tag = f"T{next(_subtrees):04d}"
    units = Units(db.pool)
    async with db.transaction() as conn:
        (province,) = await units.find(level="province", parent_id=None, scope=None)
        district = f"000.00.01.{tag}"
        district_id = await units.upsert(
            conn, code=district, name=f"Huyện thử {tag}", level="district", parent_id=province.id
        )
        codes = []
        for n in range(1, communes + 1):
            code = f"000.{n:02d}.01.{tag}"
            await units.upsert(
                conn,
                code=code,
                name=f"Xã thử {n:02d} {tag}",
                level="commune",
                parent_id=district_id,
                placeholder=placeholder,
            )
            codes.append(code)
    return Subtree(district, codes)


class Api:
    def __init__(self, client: AsyncTestClient[Litestar], db: Database, settings: Settings) -> None:
        self.client = client
        self.db = db
        self.settings = settings
        self._admin: str | None = None

    async def login(self, login: str, password: str) -> str:
        r = await self.client.post("/api/v1/auth/login", json={"login": login, "password": password})
        assert r.status_code == 200, r.text
        token: str = r.json()["access_token"]
        return token

    async def admin(self) -> str:
        if self._admin is None:
            self._admin = await self.login("admin", ADMIN_PASSWORD)
        return self._admin

    async def account(self, role: str, unit_code: str, *, change_required: bool = False) -> tuple[str, str]:
        """A new account of that role in that unit: (login, bearer token)."""
        login = f"t{next(_serial):04d}-{role.replace('_', '')}"
        unit = await self.db.pool.fetchval("SELECT id FROM units WHERE code = $1", unit_code)
        assert unit is not None, unit_code
        created = await Accounts(self.db.pool).create(
            login=login, unit_id=unit, role=role, password_hash=_PASSWORD_HASH, password_change_required=change_required
        )
        assert created is not None
        return login, await self.login(login, PASSWORD)

    async def dossier(self, token: str, **fields: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "procedure_code": "1.002891.000.00.00.H40",
            "subject": {"name": "Nguyễn Văn An", "id_kind": "cccd", "id_number": "020190000001"},
        }
        body.update(fields)
        r = await self.client.post("/api/v1/dossiers", json=body, headers=auth(token))
        assert r.status_code == 201, r.text
        result: dict[str, Any] = r.json()
        return result

    async def upload(
        self,
        token: str,
        dossier_id: str,
        data: bytes,
        *,
        kind: str = "component",
        filename: str = "scan.pdf",
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        all_headers = {
            **auth(token),
            "Content-Type": "application/pdf",
            "X-File-Kind": kind,
            "X-Filename": quote(filename),
            **(headers or {}),
        }
        return await self.client.post(f"/api/v1/dossiers/{dossier_id}/files", content=data, headers=all_headers)

    async def run_worker(
        self, settings: Settings | None = None, *, ocr: bool = False, only: list[str] | None = None
    ) -> int:
        """Drain the outbox, then run the inspection (or OCR) worker until its queue is empty; returns the
        jobs it completed. With ``only`` (file ids), the OCR queue's other jobs (image-only scans earlier
        tests left, seconds each) are dropped first."""
        settings = settings or self.settings
        queue = Queue.from_url(settings.redis_url)
        try:
            await drain_safely(self.db, queue)
        finally:
            await queue.close()
        if ocr and only is not None:
            redis = aioredis.from_url(settings.redis_url)
            try:
                keep = {f"ocr:{file_id}" for file_id in only}
                for job in await redis.zrange(OCR_QUEUE_NAME, 0, -1):
                    if job.decode() not in keep:
                        await redis.zrem(OCR_QUEUE_NAME, job)
                        await redis.delete(f"arq:job:{job.decode()}")
            finally:
                await redis.aclose()
        worker = build_worker(
            settings, ocr=ocr, drain_outbox=False, burst=True, handle_signals=False, poll_delay=0.05, cron_jobs=[]
        )
        try:
            await worker.main()
            return int(worker.jobs_complete)
        finally:
            await worker.close()

    async def file(self, token: str, file_id: str) -> dict[str, Any]:
        r = await self.client.get(f"/api/v1/files/{file_id}", headers=auth(token))
        assert r.status_code == 200, r.text
        result: dict[str, Any] = r.json()
        return result


def raw_s3(settings: Settings) -> Minio:
    """The bucket as the store itself serves it, with no warehouse code between (to set up or check)."""
    return Minio(
        endpoint=settings.s3_endpoint,
        access_key=settings.s3_access_key,
        secret_key=settings.s3_secret_key,
        secure=settings.s3_secure,
        region=settings.s3_region,
    )


class LiveServer(LiveApi):
    """The API as a real process on a free local port, with extra settings in its environment (the
    project's one harness, ``loadtests.harness.LiveApi``); its log is kept under the data folder."""

    def __init__(self, **env: str) -> None:
        import os

        port = free_port()
        # The suite signs in from one address far more often than a person would.
        extra = {"WAREHOUSE_LOGIN_ADDRESS_PER_MINUTE": "100000", **env}
        full = {**os.environ, **extra, "WAREHOUSE_PORT": str(port), "WAREHOUSE_HOST": "127.0.0.1"}
        folder = os.path.join(full.get("WAREHOUSE_DATA_DIR", ".data"), "logs")
        super().__init__(full, log=os.path.join(folder, f"live-server-{port}.log"))
