"""Entering an install from the server's console: an admin who can always sign in again, and `make run`
saying which database and bucket it uses and whether it made them."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from storage import Settings, drop_database
from tests.factories import Api, Subtree, auth

pytestmark = pytest.mark.asyncio(loop_scope="session")


def warehouse(*args: str, stdin: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "warehouse", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
    )


async def test_reset_password_lets_the_account_in_again_and_ends_its_earlier_sign_ins(api: Api, tree: Subtree) -> None:
    login, old_token = await api.account("unit_admin", tree.commune(1))
    done = warehouse("admin", "reset-password", "--login", login)
    assert done.returncode == 0, done.stderr
    new_password = done.stdout.split("shown this once:")[1].split()[0]
    assert "database warehouse_test on 127.0.0.1:5432" in done.stdout
    assert "no longer work" in done.stdout
    assert (await api.client.get("/api/v1/me", headers=auth(old_token))).status_code == 401
    token = await api.login(login, new_password)
    me = await api.client.get("/api/v1/me", headers=auth(token))
    assert me.status_code == 200 and not me.json().get("password_change_required")

    chosen = warehouse("admin", "reset-password", "--login", login, "--password-stdin", stdin="đủ-mười-ký-tự\n")
    assert chosen.returncode == 0 and "with the password you gave" in chosen.stdout
    await api.login(login, "đủ-mười-ký-tự")

    short = warehouse("admin", "reset-password", "--login", login, "--password-stdin", stdin="ngắn\n")
    assert short.returncode == 1 and "at least 10 characters" in short.stderr
    missing = warehouse("admin", "reset-password", "--login", "khong-co-ai")
    assert missing.returncode == 1 and "warehouse admin create --login khong-co-ai" in missing.stderr


async def test_create_admin_makes_a_province_administrator_once(api: Api) -> None:
    made = warehouse("admin", "create", "--login", "quan-tri-2")
    assert made.returncode == 0, made.stderr
    password = made.stdout.split("shown this once:")[1].split()[0]
    token = await api.login("quan-tri-2", password)
    me = (await api.client.get("/api/v1/me", headers=auth(token))).json()
    assert me["role"] == "province_admin"
    again = warehouse("admin", "create", "--login", "quan-tri-2")
    assert again.returncode == 1 and "already used" in again.stderr
    events = await api.client.get(
        "/api/v1/audit", params={"action": "console.create_admin"}, headers=auth(await api.admin())
    )
    assert any(e["record_id"] == str(me["id"]) for e in events.json()["items"])


async def test_migrate_says_which_database_and_bucket_and_whether_it_made_them(prepared: Settings) -> None:
    existing = warehouse("migrate")
    assert existing.returncode == 0, existing.stderr
    assert "database: database warehouse_test on 127.0.0.1:5432 (already there" in existing.stdout
    assert "bucket: warehouse-test on" in existing.stdout and "already there" in existing.stdout.split("bucket:")[1]

    url = prepared.database_url.rsplit("/", 1)[0] + "/warehouse_second_test"
    await drop_database(url)
    try:
        fresh = warehouse("migrate", WAREHOUSE_DATABASE_URL=url)
        assert fresh.returncode == 0, fresh.stderr
        assert "database warehouse_second_test on 127.0.0.1:5432 (created now)" in fresh.stdout
    finally:
        await drop_database(url)
