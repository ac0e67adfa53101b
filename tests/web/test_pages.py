"""The console over HTTP, as a browser uses it: cookies, forms with their CSRF token, redirects."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient

from loadtests.pdfgen import scanned_pdf
from tests.conftest import make_client
from tests.factories import ADMIN_PASSWORD, PASSWORD, Api, Subtree, auth

pytestmark = pytest.mark.asyncio(loop_scope="session")


class Browser:
    """One person's browser: its own cookies, and forms sent with the page's CSRF token."""

    def __init__(self, client: AsyncTestClient[Any]) -> None:
        self.client = client

    async def get(self, path: str, **kw: Any) -> httpx.Response:
        return await self.client.get(path, follow_redirects=False, **kw)

    async def form(self, path: str, data: dict[str, str], *, csrf: bool = True) -> httpx.Response:
        if self.client.cookies.get("kho_csrf") is None:
            await self.get("/console/sign-in")  # any page of the console hands out the token
        fields = {**data, "_csrf_token": self.client.cookies.get("kho_csrf") or ""} if csrf else data
        return await self.client.post(path, data=fields, follow_redirects=False)

    async def sign_in(self, login: str, password: str = PASSWORD) -> httpx.Response:
        return await self.form("/console/sign-in", {"login": login, "password": password, "next": "/console/dossiers"})


@asynccontextmanager
async def browser(api: Api) -> AsyncIterator[Browser]:
    async with make_client(api.settings) as client:
        yield Browser(client)


async def test_an_operator_signs_in_once_changes_the_password_and_files_a_dossier(api: Api, tree: Subtree) -> None:
    login, _ = await api.account("operator", tree.commune(1), change_required=True)
    async with browser(api) as b:
        r = await b.get("/console/dossiers")
        assert r.status_code == 303 and r.headers["location"].startswith("/console/sign-in?next=")
        r = await b.form("/console/sign-in", {"login": login, "password": PASSWORD}, csrf=False)
        assert r.status_code == 403, "a form without its CSRF token is refused"
        r = await b.sign_in(login, "not the password")
        assert r.status_code == 401 and "Tên đăng nhập hoặc mật khẩu không đúng" in r.text
        r = await b.sign_in(login)
        assert (r.status_code, r.headers["location"]) == (303, "/console/password")
        cookie = r.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax") and "Path=/console" in cookie
        first = b.client.cookies.get("kho_session")
        r = await b.get("/console/dossiers")
        assert (r.status_code, r.headers["location"]) == (303, "/console/password"), "the password comes first"
        r = await b.form("/console/password", {"current_password": PASSWORD, "new_password": "short"})
        assert r.status_code == 422
        r = await b.form("/console/password", {"current_password": PASSWORD, "new_password": "mat-khau-moi-cua-xa-1"})
        assert r.status_code == 303
        r = await b.get("/console/dossiers")
        assert r.status_code == 200 and "Hồ sơ" in r.text

        procedure = await api.db.pool.fetchval("SELECT procedure_code FROM procedure_versions ORDER BY 1 LIMIT 1")
        r = await b.get("/console/dossiers/new")
        assert r.status_code == 200 and f'value="{procedure}"' in r.text
        r = await b.form(
            "/console/dossiers/new",
            {
                "procedure_code": procedure,
                "subject_name": "Hoàng Thị Bình",
                "subject_id_kind": "cccd",
                "subject_id_number": "020190001234",
                "title": "Cấp bản sao trích lục",
            },
        )
        assert r.status_code == 303 and r.headers["location"].startswith("/console/dossiers/")
        page = await b.get(r.headers["location"])
        assert page.status_code == 200 and "Hoàng Thị Bình" in page.text and tree.commune(1) in page.text
        r = await b.get("/console/dossiers", params={"q": "hoang thi binh"})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert "Hoàng Thị Bình" in r.text, "found without diacritics"

    # The cookie from before the password change no longer signs anyone in.
    async with browser(api) as stale:
        stale.client.cookies.set("kho_session", first or "", path="/console")
        r = await stale.get("/console/dossiers")
        assert r.status_code == 303 and r.headers["location"].startswith("/console/sign-in")


async def test_a_commune_sees_nothing_of_another_communes_dossier(api: Api, tree: Subtree) -> None:
    login_a, token_a = await api.account("operator", tree.commune(1))
    login_b, _ = await api.account("operator", tree.commune(2))
    dossier = await api.dossier(token_a)
    r = await api.upload(token_a, dossier["id"], scanned_pdf(pages=1, dpi=100, seed=301))
    assert r.status_code == 201
    file_id = r.json()["id"]
    async with browser(api) as a, browser(api) as b:
        assert (await a.sign_in(login_a)).status_code == 303
        assert (await b.sign_in(login_b)).status_code == 303
        assert (await a.get(f"/console/dossiers/{dossier['id']}")).status_code == 200
        got = await a.get(f"/console/api/v1/files/{file_id}/content", params={"inline": "true"})
        assert got.status_code == 200 and got.content.startswith(b"%PDF")
        assert got.headers["content-disposition"].startswith("inline")
        viewed = await api.db.pool.fetchval(
            "SELECT count(*) FROM audit_events e JOIN accounts a ON a.id = e.account_id "
            "WHERE a.login = $1 AND e.action = 'get_file_content' AND e.record_id = $2",
            login_a,
            file_id,
        )
        assert viewed == 1, "what was viewed is in the audit trail"
        for path in (
            f"/console/dossiers/{dossier['id']}",
            f"/console/dossiers/{dossier['id']}/files",
            f"/console/api/v1/files/{file_id}",
            f"/console/api/v1/files/{file_id}/content",
        ):
            r = await b.get(path)
            assert r.status_code == 404, path
        found = await b.get("/console/dossiers", params={"q": dossier["code"]})
        assert found.status_code == 200 and f"/console/dossiers/{dossier['id']}" not in found.text
        # An upload session on another commune's dossier is refused as the API refuses it.
        token = b.client.cookies.get("kho_csrf") or ""
        r = await b.client.post(
            "/console/api/v1/uploads",
            json={"dossier_id": dossier["id"], "filename": "x.pdf", "size": 10, "sha256": "0" * 64},
            headers={"x-csrftoken": token},
        )
        assert r.status_code == 404
        r = await b.client.post(
            "/console/api/v1/uploads", json={"dossier_id": dossier["id"], "filename": "x.pdf", "size": 10}
        )
        assert r.status_code == 403, "a script's write without the CSRF header is refused"


async def test_the_console_cookie_signs_in_nothing_of_the_api(api: Api, tree: Subtree) -> None:
    login, token = await api.account("operator", tree.commune(1))
    async with browser(api) as b:
        assert (await b.sign_in(login)).status_code == 303
        r = await b.client.get("/api/v1/me")
        assert r.status_code == 401, "the API reads only the Authorization header and API keys"
        r = await b.client.get("/console/api/v1/uploads/00000000-0000-0000-0000-000000000000")
        assert r.status_code == 404
    async with browser(api) as nobody:
        r = await nobody.client.get("/console/api/v1/uploads/00000000-0000-0000-0000-000000000000", headers=auth(token))
        assert r.status_code == 401, "the console's routes take the console's sign-in, not a bearer token"


async def test_sign_in_sends_back_only_to_the_console(api: Api, tree: Subtree) -> None:
    login, _ = await api.account("viewer", tree.district)
    async with browser(api) as b:
        for target in ("https://example.org/", "//example.org/console", "/api/v1/me", "/console/\\evil"):
            r = await b.form("/console/sign-in", {"login": login, "password": PASSWORD, "next": target})
            assert (r.status_code, r.headers["location"]) == (303, "/console"), target
        r = await b.get("/console")
        assert (r.status_code, r.headers["location"]) == (303, "/console/dashboard")
        r = await b.get("/console/dashboard")
        assert r.status_code == 200 and "Tiến độ" in r.text
        for fmt, kind, magic in (("xlsx", "spreadsheetml", b"PK"), ("png", "image/png", b"\x89PNG")):
            got = await b.get("/console/api/v1/reports/progress", params={"format": fmt})
            assert got.status_code == 200 and kind in got.headers["content-type"], fmt
            assert got.content.startswith(magic), f"the dashboard's {fmt} is the report's"
        r = await b.get("/console/accounts")
        assert r.status_code == 403, "an official is not an administrator"
        r = await b.get("/console/language", params={"to": "en", "next": "/console/dashboard"})
        assert r.headers["location"] == "/console/dashboard"
        r = await b.get("/console/dashboard")
        assert "Progress" in r.text and 'lang="en"' in r.text


async def test_an_administrator_provisions_a_district_and_downloads_the_credentials(api: Api, tree: Subtree) -> None:
    login, _ = await api.account("unit_admin", tree.district)
    async with browser(api) as b:
        assert (await b.sign_in(login)).status_code == 303
        r = await b.get("/console/accounts")
        assert r.status_code == 200
        r = await b.form(
            "/console/accounts/provision",
            {"parent_unit_code": tree.district, "level": "commune", "per_unit": "2", "role": "operator"},
        )
        assert r.status_code == 200 and r.headers["content-disposition"].startswith("attachment")
        rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
        made = [row for row in rows[1:] if row]
        assert len(made) == 2 * len(tree.communes)
        assert {row[2] for row in made} == set(tree.communes)
        # Again: nothing new to hand out.
        r = await b.form(
            "/console/accounts/provision",
            {"parent_unit_code": tree.district, "level": "commune", "per_unit": "2", "role": "operator"},
        )
        assert len([row for row in csv.reader(io.StringIO(r.content.decode("utf-8-sig")))][1:]) == 0
        new_login, new_password = made[0][0], made[0][1]
        r = await b.form(
            "/console/accounts/provision",
            {"parent_unit_code": "000.00.00.H40", "level": "commune", "per_unit": "1", "role": "operator"},
        )
        assert r.status_code in (403, 404), "not a unit this administrator manages"
    events = await api.db.pool.fetchval(
        "SELECT count(*) FROM audit_events e JOIN accounts a ON a.id = e.account_id "
        "WHERE a.login = $1 AND e.action LIKE '%provision%'",
        login,
    )
    assert events == 3
    async with browser(api) as operator:
        r = await operator.sign_in(new_login, new_password)
        assert (r.status_code, r.headers["location"]) == (303, "/console/password")


async def test_a_page_and_what_it_loads_weigh_under_100_kb(api: Api, tree: Subtree) -> None:
    """For an old office PC on a commune's link: the page and the files it loads, before its data."""
    import re

    login, token = await api.account("operator", tree.commune(1))
    dossier = await api.dossier(token)
    async with browser(api) as b:
        assert (await b.sign_in(login)).status_code == 303
        for path in (
            "/console/sign-in",
            "/console/dossiers",
            f"/console/dossiers/{dossier['id']}",
            "/console/dashboard",
        ):
            page = await b.get(path)
            assert page.status_code == 200, path
            assets = re.findall(r'(?:src|href)="(/console/static/[^"]+)"', page.text)
            sizes = [len((await b.get(asset)).content) for asset in assets]
            total = len(page.content) + sum(sizes)
            assert total < 100 * 1024, f"{path}: {total} bytes with {assets}"
            policy = page.headers["content-security-policy"]
            assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy


async def test_an_operators_work_list_shows_the_results_owed_oldest_first(api: Api, tree: Subtree) -> None:
    from tests.warehouse.test_intake import a_return, one_stop, push

    c1 = tree.commune(1)
    key = await one_stop(api, tree, [c1])
    older, newer = a_return(c1, 31, days_ago=9), a_return(c1, 32, days_ago=2)
    assert (await push(api, key, [newer, older])).status_code == 200
    login, _ = await api.account("operator", c1)
    other, _ = await api.account("operator", tree.commune(2))
    async with browser(api) as b, browser(api) as stranger:
        assert (await b.sign_in(login)).status_code == 303
        page = (await b.get("/console/owed")).text
        assert page.index(older["dossier_code"]) < page.index(newer["dossier_code"]), "the longest waiting first"
        assert "Giấy khai sinh" in page
        assert (await stranger.sign_in(other)).status_code == 303
        assert older["dossier_code"] not in (await stranger.get("/console/owed")).text


async def test_an_administrator_sets_targets_reads_the_audit_trail_and_sends_a_failed_file_back(
    api: Api, tree: Subtree, tree2: Subtree
) -> None:
    admin, _ = await api.account("unit_admin", tree.district)
    _, op = await api.account("operator", tree.commune(1))
    dossier = await api.dossier(op)
    r = await api.upload(op, dossier["id"], scanned_pdf(pages=1, dpi=100, seed=311), filename="hong.pdf")
    file_id = r.json()["id"]
    # What a run of transient faults leaves: the file parked as failed.
    await api.db.pool.execute("UPDATE files SET stage = 'failed', last_error = 'timeout' WHERE id = $1", file_id)
    async with browser(api) as b:
        assert (await b.sign_in(admin)).status_code == 303
        r = await b.form(
            "/console/targets",
            {"unit_code": tree.commune(1), "year": "2026", "declared_total": "1200", "target_percent": "60"},
        )
        assert r.status_code == 200 and "1200" in r.text
        row = await api.db.pool.fetchrow(
            "SELECT declared_total, target_rate FROM unit_targets t JOIN units u ON u.id = t.unit_id "
            "WHERE u.code = $1 AND t.year = 2026",
            tree.commune(1),
        )
        assert row is not None and (row["declared_total"], float(row["target_rate"])) == (1200, 0.6)
        r = await b.form("/console/targets", {"unit_code": tree2.commune(1), "year": "2026", "declared_total": "5"})
        assert r.status_code == 404, "another district's unit is not this administrator's"
        r = await b.form("/console/targets", {"unit_code": tree.commune(1), "year": "x", "declared_total": "5"})
        assert r.status_code == 422

        failed = await b.get("/console/failed")
        assert failed.status_code == 200 and "hong.pdf" in failed.text
        r = await b.form(f"/console/failed/{file_id}/reprocess", {})
        assert r.status_code == 200 and "hong.pdf" in r.text  # named as sent back
        stage = await api.db.pool.fetchval("SELECT stage FROM files WHERE id = $1", file_id)
        assert stage != "failed"

        audit = await b.get("/console/audit", params={"login": admin})
        assert audit.status_code == 200 and "set_target" in audit.text and "reprocess_file" in audit.text
        assert f"file {file_id}" in audit.text, "the record the action was on"
    async with browser(api) as operator:
        login, _ = await api.account("operator", tree.commune(1))
        assert (await operator.sign_in(login)).status_code == 303
        for path in ("/console/audit", "/console/failed", "/console/targets"):
            assert (await operator.get(path)).status_code == 403, path


async def test_api_keys_are_made_shown_once_and_revoked_and_the_province_merges_a_commune(
    api: Api, tree: Subtree
) -> None:
    login, _ = await api.account("operator", tree.commune(1))
    async with browser(api) as b:
        assert (await b.sign_in(login)).status_code == 303
        r = await b.form("/console/api-keys", {"label": "máy quét tầng 1", "units": tree.commune(2)})
        assert r.status_code == 404, "a key bound to a unit the account does not reach"
        r = await b.form("/console/api-keys", {"label": "máy quét tầng 1", "units": ""})
        assert r.status_code == 200 and "máy quét tầng 1" in r.text
        secret = r.text.split("<code>", 1)[1].split("</code>", 1)[0]
        assert (await api.client.get("/api/v1/me", headers={"X-API-Key": secret})).status_code == 200
        assert secret not in (await b.get("/console/api-keys")).text, "shown once"
        key_id = await api.db.pool.fetchval(
            "SELECT k.id FROM api_keys k JOIN accounts a ON a.id = k.account_id WHERE a.login = $1", login
        )
        r = await b.form(f"/console/api-keys/{key_id}/revoke", {})
        assert r.status_code == 303
        assert (await api.client.get("/api/v1/me", headers={"X-API-Key": secret})).status_code == 401
        r = await b.form("/console/units/merge", {"code": tree.commune(2), "into": tree.commune(1)})
        assert r.status_code == 403, "only the province merges units"

    async with browser(api) as b:
        assert (await b.sign_in("admin", ADMIN_PASSWORD)).status_code == 303  # the province's administrator
        r = await b.form(
            "/console/units/merge", {"code": tree.commune(3), "into": tree.commune(1), "effective_on": "2026-01-01"}
        )
        assert (r.status_code, r.headers["location"]) == (303, "/console/units")
        tree_page = (await b.get("/console/units")).text
        assert f"đã sáp nhập vào {tree.commune(1)}" in tree_page


async def test_sign_in_never_sends_a_line_break_or_another_site_into_the_location(api: Api, tree: Subtree) -> None:
    login, _ = await api.account("operator", tree.commune(1))
    async with browser(api) as b:
        for target in ("/console/dossiers\r\nSet-Cookie: x=1", "/console/ dossiers", "/console/dossiers?q=ả"):
            r = await b.form("/console/sign-in", {"login": login, "password": PASSWORD, "next": target})
            assert (r.status_code, r.headers["location"]) == (303, "/console"), target
        r = await b.form("/console/sign-in", {"login": login, "password": PASSWORD, "next": "/console/owed?x=1"})
        assert r.headers["location"] == "/console/owed?x=1"


async def test_an_administrator_lowers_an_accounts_limits_but_may_not_raise_them(
    api: Api, tree: Subtree, tree2: Subtree
) -> None:
    admin, _ = await api.account("unit_admin", tree.district)
    await api.account("operator", tree.commune(1))
    await api.account("operator", tree2.commune(1))
    mine = await api.db.pool.fetchval(
        "SELECT a.id FROM accounts a JOIN units u ON u.id = a.unit_id WHERE u.code = $1 LIMIT 1", tree.commune(1)
    )
    theirs = await api.db.pool.fetchval(
        "SELECT a.id FROM accounts a JOIN units u ON u.id = a.unit_id WHERE u.code = $1 LIMIT 1", tree2.commune(1)
    )
    async with browser(api) as b:
        assert (await b.sign_in(admin)).status_code == 303
        assert (await b.get(f"/console/accounts/{mine}")).status_code == 200
        r = await b.form(f"/console/accounts/{mine}/limits", {"requests_per_second": "2", "concurrent_uploads": ""})
        assert (r.status_code, r.headers["location"]) == (303, f"/console/accounts/{mine}")
        limits = await api.db.pool.fetchval("SELECT limits FROM accounts WHERE id = $1", mine)
        assert limits == {"requests_per_second": 2}
        r = await b.form(f"/console/accounts/{mine}/limits", {"requests_per_second": "999999"})
        assert r.status_code == 403, "only the province raises a limit above the default"
        r = await b.form(f"/console/accounts/{mine}/limits", {"requests_per_second": "-3"})
        assert r.status_code == 422
        assert (await b.get(f"/console/accounts/{theirs}")).status_code == 404
        r = await b.form(f"/console/accounts/{theirs}/limits", {"requests_per_second": "1"})
        assert r.status_code == 404


JUNK = [
    "",
    " ",
    "x" * 5000,
    "\x00",
    "9" * 40,
    "-1",
    "1e309",
    "'; DROP TABLE units; --",
    "<script>alert(1)</script>",
    "ả" * 300,
]


async def test_junk_in_every_console_form_and_query_is_refused_without_a_server_error(api: Api, tree: Subtree) -> None:
    """What a hostile commune (or a broken browser) sends to each page: never a 5xx, nothing echoed raw."""
    login, _ = await api.account("unit_admin", tree.district)
    operator, op_token = await api.account("operator", tree.commune(1))
    dossier = await api.dossier(op_token)
    forms = {
        "/console/dossiers/new": [
            "procedure_code",
            "subject_name",
            "subject_id_number",
            "received_on",
            "result_number",
            "result_issued_on",
            "title",
        ],
        "/console/accounts/provision": ["parent_unit_code", "level", "per_unit", "role"],
        "/console/targets": ["unit_code", "year", "declared_total", "target_percent"],
        "/console/api-keys": ["label", "units"],
        "/console/units/merge": ["code", "into", "effective_on"],
        "/console/password": ["current_password", "new_password"],
    }
    queries = {
        "/console/dossiers": ["q", "subject_id", "valid", "procedure", "complete", "cursor"],
        "/console/dashboard": ["year", "level"],
        "/console/audit": ["record", "login", "unit", "day", "before"],
        "/console/accounts": ["unit"],
    }
    for who, password in ((operator, PASSWORD), (login, PASSWORD), ("admin", ADMIN_PASSWORD)):
        async with browser(api) as b:
            assert (await b.sign_in(who, password)).status_code == 303
            for path, fields in forms.items():
                for junk in JUNK:
                    r = await b.form(path, {f: junk for f in fields})
                    assert r.status_code < 500, f"{who} POST {path} {junk[:20]!r}: {r.status_code} {r.text[:200]}"
                    assert "<script>alert(1)</script>" not in r.text
            for path, names in queries.items():
                for junk in JUNK:
                    r = await b.get(path, params={n: junk for n in names})
                    assert r.status_code < 500, f"{who} GET {path} {junk[:20]!r}: {r.status_code} {r.text[:200]}"
                    assert "<script>alert(1)</script>" not in r.text
            r = await b.get(f"/console/dossiers/{dossier['id']}")
            assert r.status_code in (200, 404)


async def test_every_phrase_the_pages_use_exists_in_vietnamese_and_english() -> None:
    import re
    from pathlib import Path

    from warehouse.web.i18n import words

    folder = Path(__file__).parents[2] / "warehouse" / "web" / "templates"
    used = {m for f in folder.glob("*.html") for m in re.findall(r"\bt\.(\w+)", f.read_text())}
    assert len(used) > 50
    for lang in ("vi", "en"):
        table = words(lang)
        assert not used - set(table), f"{lang}: {sorted(used - set(table))}"
        assert all(table[k].strip() for k in used)
