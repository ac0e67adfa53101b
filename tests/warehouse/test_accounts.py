"""Accounts: provisioning a district's communes, one-time passwords, lockout, API keys."""

from __future__ import annotations

import asyncio
import csv
import io

import pytest

from tests.conftest import make_client
from tests.factories import PASSWORD, Api, Subtree, auth, commune, district

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_admin_provisions_a_whole_district_and_operators_work(api: Api) -> None:
    admin = await api.admin()
    body = {"parent_unit_code": district(22), "level": "commune", "per_unit": 3, "role": "operator"}
    r = await api.client.post("/api/v1/accounts/provision", json=body, headers=auth(admin))
    assert r.status_code == 201, r.text
    accounts = r.json()["accounts"]
    assert len(accounts) == 22 * 3  # Tràng Định has 22 communes
    first = accounts[0]
    assert first["login"] == f"{first['unit_code'].lower()}-op01"
    assert len({a["login"] for a in accounts}) == len(accounts)

    again = await api.client.post("/api/v1/accounts/provision", json=body, headers=auth(admin))
    assert again.status_code == 201
    assert again.json()["accounts"] == [], "running it again creates nothing"

    more = await api.client.post(
        "/api/v1/accounts/provision", json={**body, "per_unit": 4}, headers={**auth(admin), "Accept": "text/csv"}
    )
    assert more.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(more.content.decode("utf-8-sig"))))
    assert len(rows) == 22 and all(row["login"].endswith("-op04") for row in rows)

    # An operator signs in with the one-time password, must change it, then works in its commune.
    token = await api.login(first["login"], first["password"])
    r = await api.client.get("/api/v1/dossiers", headers=auth(token))
    assert (r.status_code, r.json()["code"]) == (403, "password_change_required")
    r = await api.client.post(
        "/api/v1/me/password",
        json={"current_password": first["password"], "new_password": "mat-khau-rieng-cua-toi"},
        headers=auth(token),
    )
    assert r.status_code == 200
    token = await api.login(first["login"], "mat-khau-rieng-cua-toi")
    dossier = await api.dossier(token)
    assert dossier["unit_code"] == first["unit_code"]


async def test_unit_admin_provisions_only_below_itself(api: Api) -> None:
    _, district_admin = await api.account("unit_admin", district(23))
    ok = await api.client.post(
        "/api/v1/accounts/provision",
        json={"parent_unit_code": district(23), "level": "commune", "per_unit": 1, "role": "viewer"},
        headers=auth(district_admin),
    )
    assert ok.status_code == 201 and len(ok.json()["accounts"]) == 17
    elsewhere = await api.client.post(
        "/api/v1/accounts/provision",
        json={"parent_unit_code": district(24), "level": "commune", "per_unit": 1, "role": "viewer"},
        headers=auth(district_admin),
    )
    assert elsewhere.status_code == 404
    too_high = await api.client.post(
        "/api/v1/accounts",
        json={"login": "tinh-moi", "unit_code": district(23), "role": "province_admin"},
        headers=auth(district_admin),
    )
    assert too_high.status_code == 403
    _, operator = await api.account("operator", commune(23, 1))
    r = await api.client.post(
        "/api/v1/accounts/provision",
        json={"parent_unit_code": commune(23, 1), "level": "commune", "per_unit": 1, "role": "operator"},
        headers=auth(operator),
    )
    assert r.status_code == 403


async def test_create_account_rules(api: Api, tree: Subtree) -> None:
    admin = await api.admin()
    r = await api.client.post(
        "/api/v1/accounts",
        json={"login": "Nguyễn Văn", "unit_code": tree.commune(1), "role": "operator"},
        headers=auth(admin),
    )
    assert (r.status_code, r.json()["code"]) == (422, "invalid_login")
    r = await api.client.post(
        "/api/v1/accounts",
        json={"login": "xa-24-01-nva", "unit_code": tree.commune(1), "role": "operator"},
        headers=auth(admin),
    )
    assert r.status_code == 201 and r.json()["password"]
    r = await api.client.post(
        "/api/v1/accounts",
        json={"login": "xa-24-01-nva", "unit_code": tree.commune(1), "role": "operator"},
        headers=auth(admin),
    )
    assert (r.status_code, r.json()["code"]) == (409, "login_taken")
    listed = await api.client.get("/api/v1/accounts", params={"unit": tree.commune(1)}, headers=auth(admin))
    assert "xa-24-01-nva" in {a["login"] for a in listed.json()}


async def test_lockout_grows_and_ends(api: Api, tree: Subtree) -> None:
    quick = api.settings.model_copy(update={"login_free_attempts": 3, "login_lock_seconds": 1})
    login, _ = await api.account("operator", tree.commune(1))
    async with make_client(quick) as client:

        async def attempt(password: str) -> tuple[int, dict[str, object], dict[str, str]]:
            r = await client.post("/api/v1/auth/login", json={"login": login, "password": password})
            return r.status_code, r.json(), dict(r.headers)

        assert (await attempt("sai-1"))[0] == 401
        assert (await attempt("sai-2"))[0] == 401
        status, body, headers = await attempt("sai-3")
        assert (status, body["code"]) == (429, "account_locked")
        assert int(headers["retry-after"]) >= 1
        assert "locked until" in str(body["detail"])
        # The right password does not open a locked account.
        status, body, _ = await attempt(PASSWORD)
        assert (status, body["code"]) == (429, "account_locked")
        await asyncio.sleep(1.2)
        status, body, headers = await attempt("sai-4")  # one more failure: locked twice as long
        assert (status, body["code"]) == (429, "account_locked")
        assert 2 <= int(headers["retry-after"]) <= 3
        await asyncio.sleep(int(headers["retry-after"]) + 0.2)
        status, body, _ = await attempt(PASSWORD)
        assert status == 200, body


async def test_admin_disables_enables_and_resets(api: Api, tree: Subtree) -> None:
    admin = await api.admin()
    login, token = await api.account("operator", tree.commune(1))
    account_id = (await api.client.get("/api/v1/me", headers=auth(token))).json()["id"]
    r = await api.client.patch(f"/api/v1/accounts/{account_id}", json={"state": "disabled"}, headers=auth(admin))
    assert r.status_code == 200 and r.json()["state"] == "disabled"
    assert (await api.client.get("/api/v1/me", headers=auth(token))).status_code == 401
    r = await api.client.patch(f"/api/v1/accounts/{account_id}", json={"state": "active"}, headers=auth(admin))
    assert (await api.client.get("/api/v1/me", headers=auth(token))).status_code == 200
    reset = await api.client.post(f"/api/v1/accounts/{account_id}/reset-password", headers=auth(admin))
    assert reset.status_code == 200
    fresh = await api.client.post("/api/v1/auth/login", json={"login": login, "password": reset.json()["password"]})
    assert fresh.json()["password_change_required"] is True
    r = await api.client.patch(
        f"/api/v1/accounts/{account_id}", json={"limits": {"requests_per_second": 0}}, headers=auth(admin)
    )
    assert (r.status_code, r.json()["code"]) == (422, "invalid_limits")


async def test_api_key_acts_for_its_account_until_revoked(api: Api, tree: Subtree) -> None:
    _, token = await api.account("operator", tree.commune(1))
    created = await api.client.post("/api/v1/api-keys", json={"label": "Máy scan phòng một cửa"}, headers=auth(token))
    assert created.status_code == 201
    key = created.json()["key"]
    assert key.startswith("kho_")
    me = await api.client.get("/api/v1/me", headers={"X-API-Key": key})
    assert me.status_code == 200 and me.json()["unit"]["code"] == tree.commune(1)
    dossier = await api.client.post(
        "/api/v1/dossiers",
        json={"procedure_code": "1.002891", "subject": {"name": "A", "id_kind": "other", "id_number": "a"}},
        headers={"X-API-Key": key},
    )
    assert dossier.status_code == 201
    listed = (await api.client.get("/api/v1/api-keys", headers=auth(token))).json()
    assert listed[0]["last_used_at"] is not None
    assert "key" not in listed[0] or listed[0]["key"] is None, "a key is shown once"

    _, stranger = await api.account("operator", tree.commune(2))
    key_id = created.json()["id"]
    assert (await api.client.delete(f"/api/v1/api-keys/{key_id}", headers=auth(stranger))).status_code == 404
    assert (await api.client.delete(f"/api/v1/api-keys/{key_id}", headers=auth(token))).status_code == 204
    assert (await api.client.get("/api/v1/me", headers={"X-API-Key": key})).status_code == 401
    assert (await api.client.get("/api/v1/me", headers={"X-API-Key": "kho_made-up"})).status_code == 401


async def test_a_hash_made_with_older_parameters_is_replaced_at_login(api: Api, tree: Subtree) -> None:
    from argon2 import PasswordHasher

    login, _ = await api.account("operator", tree.commune(1))
    old = PasswordHasher(time_cost=3, memory_cost=65536, parallelism=4).hash(PASSWORD)
    await api.db.pool.execute("UPDATE accounts SET password_hash = $2 WHERE login = $1", login, old)
    await api.login(login, PASSWORD)
    stored = await api.db.pool.fetchval("SELECT password_hash FROM accounts WHERE login = $1", login)
    assert stored != old and "m=19456,t=2,p=1" in stored
    await api.login(login, PASSWORD)


async def test_the_credentials_csv_opens_in_a_spreadsheet_with_unit_names(api: Api, tree: Subtree) -> None:
    admin = await api.admin()
    body = {"parent_unit_code": tree.district, "level": "commune", "per_unit": 1, "role": "viewer"}
    r = await api.client.post("/api/v1/accounts/provision", json=body, headers={**auth(admin), "Accept": "text/csv"})
    assert r.status_code == 201
    assert r.headers["content-type"].count("charset") == 1, r.headers["content-type"]
    assert r.content.startswith(b"\xef\xbb\xbf"), "a byte-order mark, so a spreadsheet reads UTF-8"
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows and all(row["unit_name"] for row in rows)
    assert "attachment" in r.headers["content-disposition"]
