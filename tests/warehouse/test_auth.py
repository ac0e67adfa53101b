"""Every call but health, docs and login needs a credential; tokens expire and can be forged only badly."""

from __future__ import annotations

import time

import jwt
import pytest

from tests.factories import ADMIN_PASSWORD, PASSWORD, Api, Subtree, auth

pytestmark = pytest.mark.asyncio(loop_scope="session")

PROTECTED = [
    ("GET", "/api/v1/me"),
    ("GET", "/api/v1/units"),
    ("GET", "/api/v1/dossiers"),
    ("POST", "/api/v1/dossiers"),
    ("GET", "/api/v1/dossiers/6f1c1f4e-0000-4000-8000-000000000000"),
    ("PATCH", "/api/v1/dossiers/6f1c1f4e-0000-4000-8000-000000000000"),
    ("DELETE", "/api/v1/dossiers/6f1c1f4e-0000-4000-8000-000000000000"),
    ("POST", "/api/v1/dossiers/6f1c1f4e-0000-4000-8000-000000000000/files"),
    ("GET", "/api/v1/files/6f1c1f4e-0000-4000-8000-000000000000"),
    ("GET", "/api/v1/files/6f1c1f4e-0000-4000-8000-000000000000/content"),
    ("DELETE", "/api/v1/files/6f1c1f4e-0000-4000-8000-000000000000"),
]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
async def test_without_a_credential_every_endpoint_is_401(api: Api, method: str, path: str) -> None:
    r = await api.client.request(method, path)
    assert r.status_code == 401
    assert r.json()["code"] == "unauthenticated"
    assert r.headers["content-type"].startswith("application/problem+json")


async def test_login_and_me(api: Api) -> None:
    r = await api.client.post("/api/v1/auth/login", json={"login": "admin", "password": ADMIN_PASSWORD})
    assert r.status_code == 200
    body = r.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == api.settings.token_ttl_seconds
    assert body["password_change_required"] is False
    me = (await api.client.get("/api/v1/me", headers=auth(body["access_token"]))).json()
    assert me["login"] == "admin"
    assert me["role"] == "province_admin"
    assert me["unit"]["code"] == "000.00.00.HXX"


async def test_wrong_password_and_unknown_login_are_the_same_401(api: Api) -> None:
    wrong = await api.client.post("/api/v1/auth/login", json={"login": "admin", "password": "nope"})
    unknown = await api.client.post("/api/v1/auth/login", json={"login": "nobody", "password": "nope"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["code"] == unknown.json()["code"] == "bad_credentials"


async def test_tampered_expired_and_garbage_tokens_are_401(api: Api, tree: Subtree) -> None:
    _, token = await api.account("operator", tree.commune(1))
    header, payload, signature = token.split(".")
    tampered = f"{header}.{payload}.{signature[:-4]}AAAA"
    expired = jwt.encode(
        {"sub": "1", "iat": int(time.time()) - 7200, "exp": int(time.time()) - 3600, "typ": "access"},
        api.settings.secret_key,
        algorithm="HS256",
    )
    forged = jwt.encode(
        {"sub": "1", "iat": int(time.time()), "exp": int(time.time()) + 3600, "typ": "access"},
        "not-the-warehouse-key-at-all-not-the-key",
        algorithm="HS256",
    )
    for bad in (tampered, expired, forged, "garbage"):
        r = await api.client.get("/api/v1/me", headers=auth(bad))
        assert r.status_code == 401, bad
    r = await api.client.get("/api/v1/me", headers={"Authorization": "Basic YWRtaW46YWRtaW4="})
    assert r.status_code == 401


async def test_a_token_used_before_is_refused_once_it_expires(api: Api, tree: Subtree) -> None:
    """Tokens are verified once and their claims kept for the requests after; the expiry still holds."""
    import asyncio

    from warehouse.security import issue_token

    account = await api.db.pool.fetchrow(
        "SELECT id, credentials_version FROM accounts WHERE login = $1",
        (await api.account("operator", tree.commune(1)))[0],
    )
    token = issue_token(
        api.settings.secret_key, account["id"], ttl_seconds=2, credentials_version=account["credentials_version"]
    )
    assert (await api.client.get("/api/v1/me", headers=auth(token))).status_code == 200
    await asyncio.sleep(3)
    r = await api.client.get("/api/v1/me", headers=auth(token))
    assert r.status_code == 401 and r.json()["code"] == "unauthenticated"


async def test_disabled_account_stops_at_once(api: Api, tree: Subtree) -> None:
    login, token = await api.account("operator", tree.commune(1))
    assert (await api.client.get("/api/v1/me", headers=auth(token))).status_code == 200
    await api.db.pool.execute("UPDATE accounts SET state = 'disabled' WHERE login = $1", login)
    assert (await api.client.get("/api/v1/me", headers=auth(token))).status_code == 401
    r = await api.client.post("/api/v1/auth/login", json={"login": login, "password": PASSWORD})
    assert r.status_code == 401


async def test_one_time_password_must_be_changed_first(api: Api, tree: Subtree) -> None:
    login, token = await api.account("operator", tree.commune(1), change_required=True)
    r = await api.client.get("/api/v1/dossiers", headers=auth(token))
    assert (r.status_code, r.json()["code"]) == (403, "password_change_required")
    r = await api.client.post(
        "/api/v1/me/password",
        json={"current_password": PASSWORD, "new_password": "mat-khau-moi-cua-xa"},
        headers=auth(token),
    )
    assert r.status_code == 200, r.text
    fresh = await api.login(login, "mat-khau-moi-cua-xa")
    assert (await api.client.get("/api/v1/dossiers", headers=auth(fresh))).status_code == 200


async def test_public_operations_endpoints_need_no_credential(api: Api) -> None:
    assert (await api.client.get("/health/live")).status_code == 200
    schema = await api.client.get("/schema/openapi.json")
    assert schema.status_code == 200
    assert "/api/v1/dossiers/{dossier_id}/files" in schema.json()["paths"]
    assert (await api.client.get("/schema")).status_code == 200
    metrics = await api.client.get("/metrics")
    assert metrics.status_code == 200
    assert "warehouse_requests_total" in metrics.text
