"""The audit trail records writes, logins and reads of file content, and cannot be changed."""

from __future__ import annotations

import asyncpg
import pytest

from tests.factories import PASSWORD, Api, Subtree, auth
from tests.pdfs import text_pdf

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_upload_read_and_login_are_recorded(api: Api, tree: Subtree) -> None:
    login, token = await api.account("operator", tree.commune(1))
    dossier = await api.dossier(token)
    up = await api.upload(token, dossier["id"], text_pdf())
    file_id = up.json()["id"]
    read = await api.client.get(f"/api/v1/files/{file_id}/content", headers=auth(token))
    assert read.headers["x-request-id"]
    await api.client.post("/api/v1/auth/login", json={"login": login, "password": "wrong-password"})

    admin = await api.admin()
    events = (await api.client.get("/api/v1/audit", params={"record": file_id}, headers=auth(admin))).json()["items"]
    actions = [e["action"] for e in events]
    assert actions == ["get_file_content", "upload_file"]
    assert events[0]["login"] == login
    assert events[0]["request_id"] == read.headers["x-request-id"]
    assert events[1]["status"] == 201 and events[1]["client_addr"]
    created = (await api.client.get("/api/v1/audit", params={"record": dossier["id"]}, headers=auth(admin))).json()
    assert [e["action"] for e in created["items"]][-1] == "create_dossier"
    me = (await api.client.get("/api/v1/me", headers=auth(token))).json()
    logins = (await api.client.get("/api/v1/audit", params={"account": me["id"]}, headers=auth(admin))).json()
    statuses = [(e["action"], e["status"]) for e in logins["items"] if e["action"] == "login"]
    assert ("login", 401) in statuses and ("login", 200) in statuses


async def test_unit_admin_sees_its_units_events_only(api: Api, tree: Subtree, tree2: Subtree) -> None:
    _, here = await api.account("operator", tree.commune(1))
    _, there = await api.account("operator", tree2.commune(1))
    mine = await api.dossier(here)
    theirs = await api.dossier(there)
    _, district_admin = await api.account("unit_admin", tree.district)
    seen = await api.client.get("/api/v1/audit", params={"record": mine["id"]}, headers=auth(district_admin))
    assert len(seen.json()["items"]) == 1
    hidden = await api.client.get("/api/v1/audit", params={"record": theirs["id"]}, headers=auth(district_admin))
    assert hidden.json()["items"] == []


async def test_the_database_refuses_to_change_or_delete_audit_rows(api: Api) -> None:
    await api.login("admin", (await _admin_password()))
    with pytest.raises(asyncpg.PostgresError, match="append-only"):
        await api.db.pool.execute("UPDATE audit_events SET action = 'nothing happened'")
    with pytest.raises(asyncpg.PostgresError, match="append-only"):
        await api.db.pool.execute("DELETE FROM audit_events")
    with pytest.raises(asyncpg.PostgresError, match="append-only"):
        await api.db.pool.execute("TRUNCATE audit_events")
    assert await api.db.pool.fetchval("SELECT count(*) FROM audit_events") > 0


async def _admin_password() -> str:
    from tests.factories import ADMIN_PASSWORD

    assert PASSWORD != ADMIN_PASSWORD
    return ADMIN_PASSWORD
