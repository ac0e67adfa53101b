"""Schemathesis over the whole OpenAPI document, as an operator and as the province administrator.

Fails on any 5xx, on a status the document does not declare, and on an answer that does not match
its schema. `make test` runs a short seeded pass; `make fuzz` a long one (WAREHOUSE_FUZZ_EXAMPLES).
The API runs as a real process on a database, Redis database and bucket of its own.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from storage import Database, Settings, app_database_url, drop_database, migrate
from tests.factories import ADMIN_PASSWORD, LiveServer, commune
from warehouse.security import Passwords
from warehouse.seed import seed

DATABASE = "postgresql://postgres@127.0.0.1:5432/warehouse_fuzz_test"
REDIS = "redis://127.0.0.1:6379/12"
# Operations that would end the fuzzer's own sign-in.
SKIPPED = ["change_password"]
CHECKS = "not_a_server_error,status_code_conformance,response_schema_conformance,content_type_conformance"


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    import asyncio

    settings = Settings(database_url=DATABASE)

    async def fresh() -> None:
        await drop_database(DATABASE)
        await migrate(DATABASE, app_url=app_database_url(settings))
        db = await Database.connect(DATABASE, min_size=1, max_size=2)
        try:
            await seed(
                db,
                suffix=settings.province_org_suffix,
                admin_password=ADMIN_PASSWORD,
                passwords=Passwords.from_settings(settings),
            )
        finally:
            await db.close()

    asyncio.run(fresh())
    import redis

    redis.Redis.from_url(REDIS).flushdb()  # sign-in locks and limits of earlier runs
    env = {
        "WAREHOUSE_DATABASE_URL": DATABASE,
        "WAREHOUSE_REDIS_URL": REDIS,
        "WAREHOUSE_RATE_ACCOUNT_RPS": "100000",
        "WAREHOUSE_RATE_UNIT_RPS": "100000",
        "WAREHOUSE_RATE_ACCOUNT_UPLOADS": "1000",
        "WAREHOUSE_RATE_UNIT_UPLOADS": "1000",
        "WAREHOUSE_UPLOAD_IDLE_SECONDS": "5",
    }
    with LiveServer(**env) as live:
        yield live


def sign_in(url: str, login: str, password: str) -> str:
    r = httpx.post(f"{url}/api/v1/auth/login", json={"login": login, "password": password}, timeout=30)
    assert r.status_code == 200, r.text
    token: str = r.json()["access_token"]
    return token


def operator_token(url: str, admin: str) -> str:
    headers = {"Authorization": f"Bearer {admin}"}
    r = httpx.post(
        f"{url}/api/v1/accounts",
        json={
            "login": "fuzz-operator",
            "password": "mat-khau-fuzz-2026",
            "unit_code": commune(22, 3),
            "role": "operator",
        },
        headers=headers,
        timeout=30,
    )
    assert r.status_code in (201, 409), r.text
    return sign_in(url, "fuzz-operator", "mat-khau-fuzz-2026")


def real_ids(url: str, token: str, account_id: int) -> dict[str, object]:
    """A dossier with a file and an open upload session of the operator's, so that the fuzzer's calls
    reach the code behind the ids instead of stopping at 404."""
    from tests.pdfs import text_pdf

    headers = {"Authorization": f"Bearer {token}"}
    dossier = httpx.post(
        f"{url}/api/v1/dossiers",
        json={
            "procedure_code": "1.002891",
            "subject": {"name": "Lê Văn Tám", "id_kind": "cccd", "id_number": "020190000077"},
        },
        headers=headers,
        timeout=30,
    ).json()
    data = text_pdf()
    file = httpx.post(
        f"{url}/api/v1/dossiers/{dossier['id']}/files",
        content=data,
        headers={**headers, "Content-Type": "application/pdf", "X-File-Kind": "component"},
        timeout=30,
    ).json()
    import hashlib

    session = httpx.post(
        f"{url}/api/v1/uploads",
        json={
            "dossier_id": dossier["id"],
            "filename": "a.pdf",
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "kind": "result",
        },
        headers=headers,
        timeout=30,
    ).json()
    return {
        "dossier_id": dossier["id"],
        "file_id": file["id"],
        "session_id": session["id"],
        "account_id": account_id,
        "unit_code": commune(22, 3),
    }


def fuzz(url: str, token: str, ids: dict[str, object], folder: Path) -> subprocess.CompletedProcess[str]:
    examples = os.environ.get("WAREHOUSE_FUZZ_EXAMPLES", "6")
    config = folder / "schemathesis.toml"
    config.write_text(
        "[parameters]\n" + "".join(f"{name} = {value!r}\n".replace("'", '"') for name, value in ids.items())
    )
    report = folder / "report.ndjson"
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(config),
        "run",
        f"{url}/schema/openapi.json",
        "--header",
        f"Authorization: Bearer {token}",
        "--checks",
        CHECKS,
        "--max-examples",
        examples,
        "--seed",
        os.environ.get("WAREHOUSE_FUZZ_SEED", "20261203"),
        "--phases",
        "examples,coverage,fuzzing",
        # one worker: with two, their threads hit CPython 3.11's ast.parse race in Hypothesis's lambda
        # descriptions now and then ("AST constructor recursion depth mismatch"), an error of the tool
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--no-shrink",
        "--suppress-health-check",
        "all",
        "--report",
        "ndjson",
        "--report-ndjson-path",
        str(report),
        *[arg for op in SKIPPED for arg in ("--exclude-operation-id", op)],
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=1800, env={**os.environ, "NO_COLOR": "1"})


@pytest.fixture(scope="module")
def callers(server: LiveServer) -> dict[str, object]:
    """Both tokens and the operator's ids, made before any fuzzing (which may lock or reset them)."""
    admin = sign_in(server.url, "admin", ADMIN_PASSWORD)
    operator = operator_token(server.url, admin)
    me = httpx.get(f"{server.url}/api/v1/me", headers={"Authorization": f"Bearer {operator}"}, timeout=30).json()
    return {"operator": operator, "province_admin": admin, "ids": real_ids(server.url, operator, me["id"])}


@pytest.mark.parametrize("who", ["operator", "province_admin"])
def test_no_operation_answers_5xx_or_off_its_schema(
    server: LiveServer, callers: dict[str, Any], who: str, tmp_path: Path
) -> None:
    done = fuzz(server.url, callers[who], callers["ids"], tmp_path)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
