"""Every route of the app, walked from the router, with one commune's credentials on another's ids.

A route added tomorrow is walked the day it is added: a path parameter this test does not know fails
it, so whoever adds the route says here which of commune B's things it names.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any
from uuid import UUID

import pytest

from loadtests.pdfgen import scanned_pdf
from storage import Accounts
from storage.feed import Subscriptions
from storage.retention import Retention
from tests.conftest import make_client
from tests.factories import PASSWORD, Api, auth, commune

pytestmark = pytest.mark.asyncio(loop_scope="session")

A, B = commune(27, 20), commune(27, 21)
# Routes that are public or act only on the caller itself (and would end its own sign-in).
# The public check of a result (/verify) is open to anyone by design: it says what the QR carries.
SELF_OR_PUBLIC = re.compile(
    r"^/(health|schema|metrics|verify)|^/api/v1/(auth/login|me|me/password)$"
    r"|^/console/(sign-in|sign-out|password|language|static)"
)
# The procedure catalogue is the province's, read by every account: its path names no commune's thing.
SHARED_READS = re.compile(r"^GET /api/v1/procedures/")


async def commune_b(api: Api) -> dict[str, Any]:
    login, operator = await api.account("operator", B)
    me = (await api.client.get("/api/v1/me", headers=auth(operator))).json()
    subject = "020190099901"
    dossier = await api.dossier(operator, subject={"name": "Nông Thị Bé", "id_kind": "cccd", "id_number": subject})
    data = scanned_pdf(pages=1, dpi=100, seed=271)
    r = await api.upload(operator, dossier["id"], data)
    assert r.status_code == 201, r.text
    file = r.json()
    r = await api.client.post(
        "/api/v1/uploads",
        json={
            "dossier_id": dossier["id"],
            "filename": "b.pdf",
            "size": 6 * 1024 * 1024,
            "sha256": "a" * 64,
            "kind": "result",
        },
        headers=auth(operator),
    )
    assert r.status_code == 201, r.text
    session = r.json()
    r = await api.client.post("/api/v1/api-keys", json={"label": "máy quét xã B"}, headers=auth(operator))
    assert r.status_code == 201, r.text
    key = r.json()
    # an accepted result, with its digitization result code
    r = await api.upload(operator, dossier["id"], scanned_pdf(pages=1, dpi=100, seed=272), kind="result")
    assert r.status_code == 201, r.text
    await api.run_worker()
    result = await api.file(operator, r.json()["id"])
    assert result["result_code"], result
    # a push subscription of B's administrator (registered in storage: its receiver is not on this machine)
    admin_login, _ = await api.account("unit_admin", B)
    admin = await Accounts(api.db.pool).get_by_login(admin_login)
    assert admin is not None
    subscription = await Subscriptions(api.db.pool).create(
        name="cổng xã B",
        url="https://hooks.example.org/b",
        profile="warehouse",
        kinds=["dossier.created"],
        unit_ids=[admin.unit_id],
        secret="whsec_" + "QUJD" * 8,
        from_beginning=False,
        created_by=admin.id,
    )
    # a purge proposed by B's administrator (recorded in storage: B has no dossier past its retention)
    purge = await Retention(api.db.pool, "permanent").propose(
        reason="hết hạn", dossier_ids=[UUID(dossier["id"])], unit_ids=[admin.unit_id], by=admin.id
    )
    return {
        "token": operator,
        "login": login,
        "account_id": me["id"],
        "dossier": dossier,
        "file": file,
        "bytes": data,
        "sha256": hashlib.sha256(data).hexdigest(),
        "subject": subject,
        "session": session,
        "key_id": key["id"],
        "key": key["key"],
        "result": result,
        "subscription": str(subscription.id),
        "purge": str(purge.id),
    }


def path_values(b: dict[str, Any]) -> dict[str, str]:
    return {
        "dossier_id": b["dossier"]["id"],
        "file_id": b["file"]["id"],
        "session_id": b["session"]["id"],
        "account_id": str(b["account_id"]),
        "key_id": str(b["key_id"]),
        "code": B,
        "unit_code": B,
        "year": "2026",
        "n": "1",
        "procedure_code": "1.001612",
        "effective_from": "2026-01-01",
        "result_code": b["result"]["result_code"],
        "subscription_id": b["subscription"],
        "purge_id": b["purge"],
    }


def body_naming_b(b: dict[str, Any]) -> dict[str, Any]:
    """Whatever a create or change could name: all of it commune B's."""
    return {
        "dossier_id": b["dossier"]["id"],
        "unit_code": B,
        "parent_unit_code": B,
        "parent_code": B,
        "code": f"{B}-230101-0001",
        "into": B,
        "parent": B,
        "effective_on": "2026-01-01",
        "login": "ke-la-mat",
        "role": "operator",
        "level": "commune",
        "per_unit": 1,
        "filename": "a.pdf",
        "size": 1024,
        "sha256": b["sha256"],
        "kind": "component",
        "procedure_code": "1.002891",
        "subject": {"name": "Kẻ Lạ", "id_kind": "cccd", "id_number": "020190099902"},
        "declared_total": 10,
        "target_rate": 0.5,
        "state": "disabled",
        "name": "Xã lạ",
        "label": "khoá lạ",
        "units": [B],
        "url": "https://hooks.example.org/a",
        "retention": "99y",
        "reason": "Kẻ lạ muốn phong tỏa",
        "dossier_ids": [b["dossier"]["id"]],
    }


def query_naming_b(b: dict[str, Any]) -> dict[str, str]:
    return {
        "unit": B,
        "parent": B,
        "subject_id": b["subject"],
        "sha256": b["sha256"],
        "record": b["dossier"]["id"],
        "account": str(b["account_id"]),
    }


def routes(api: Api) -> list[tuple[str, str]]:
    app = api.client.app
    found = []
    for route in app.routes:
        for method in sorted(getattr(route, "methods", ())):
            if method in ("HEAD", "OPTIONS") or SELF_OR_PUBLIC.search(route.path):
                continue
            found.append((method, route.path))
    return found


def operation_of(openapi: dict[str, Any], method: str, template: str) -> dict[str, Any]:
    path = re.sub(r"\{(\w+):\w+\}", r"{\1}", template)
    operation: dict[str, Any] = openapi["paths"].get(path, {}).get(method.lower(), {})
    return operation


def takes_json(openapi: dict[str, Any], method: str, template: str) -> bool:
    content = operation_of(openapi, method, template).get("requestBody", {}).get("content", {})
    return "application/json" in content or (not content and template.split("/")[-1] not in ("files", "{n:int}"))


def accepted_fields(openapi: dict[str, Any], method: str, template: str) -> set[str] | None:
    """The JSON body fields the operation takes, from the OpenAPI document (None: any)."""
    content = operation_of(openapi, method, template).get("requestBody", {}).get("content", {})
    schema = content.get("application/json", {}).get("schema", {})
    if "$ref" in schema:
        schema = openapi["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    properties = schema.get("properties")
    return set(properties) if properties else None


async def test_no_route_lets_one_commune_reach_anothers_records(api: Api) -> None:
    openapi = (await api.client.get("/schema/openapi.json")).json()
    b = await commune_b(api)
    made = {role: await api.account(role, A) for role in ("operator", "unit_admin", "viewer", "signer")}
    callers = {role: token for role, (_, token) in made.items()}
    # The console's routes, as each of the same accounts signed in to the console in a browser.
    consoles = {}
    for role, (login, _) in made.items():
        console = make_client(api.settings)
        await console.__aenter__()
        await console.get("/console/sign-in")
        signed = await console.post(
            "/console/sign-in",
            data={"login": login, "password": PASSWORD, "_csrf_token": console.cookies.get("kho_csrf") or ""},
            follow_redirects=False,
        )
        assert signed.status_code == 303, signed.text
        consoles[role] = console
    values = path_values(b)
    secrets = [B, b["dossier"]["id"], b["file"]["id"], b["session"]["id"], b["login"], b["sha256"], b["subject"]]
    secrets.append(b["result"]["result_code"])
    walked = 0
    for method, template in routes(api):
        names = re.findall(r"\{(\w+)(?::\w+)?\}", template)
        unknown = [n for n in names if n not in values]
        assert not unknown, f"{method} {template}: say in this test which of B's things {unknown} names"
        path = re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: values[m.group(1)], template)
        for role, token in callers.items():
            kwargs: dict[str, Any] = {"headers": auth(token), "params": query_naming_b(b)}
            client = api.client
            if template.startswith("/console"):
                client = consoles[role]
                kwargs = {
                    "headers": {"x-csrftoken": client.cookies.get("kho_csrf") or ""},
                    "params": query_naming_b(b),
                    "follow_redirects": False,
                }
                if not template.startswith("/console/api/"):  # a page's form
                    if method == "POST":
                        kwargs["data"] = {k: str(v) for k, v in body_naming_b(b).items() if not isinstance(v, dict)}
                    template_for_doc = None
                else:
                    template_for_doc = template.removeprefix("/console")
                if (
                    template_for_doc
                    and method in ("POST", "PUT", "PATCH")
                    and takes_json(openapi, method, template_for_doc)
                ):
                    fields = accepted_fields(openapi, method, template_for_doc)
                    kwargs["json"] = {k: v for k, v in body_naming_b(b).items() if fields is None or k in fields}
                elif template_for_doc and method in ("POST", "PUT"):
                    kwargs["content"] = b["bytes"]
                    kwargs["headers"] = {
                        **kwargs["headers"],
                        "Content-Type": "application/pdf",
                        "X-File-Kind": "component",
                    }
            elif method in ("POST", "PUT", "PATCH") and takes_json(openapi, method, template):
                fields = accepted_fields(openapi, method, template)
                kwargs["json"] = {k: v for k, v in body_naming_b(b).items() if fields is None or k in fields}
            elif method in ("POST", "PUT"):  # a streamed body: a file, or a part of one
                kwargs["content"] = b["bytes"]
                kwargs["headers"] = {**auth(token), "Content-Type": "application/pdf", "X-File-Kind": "component"}
            r = await client.request(method, path, **kwargs)
            walked += 1
            where = f"{role} {method} {template} -> {r.status_code} {r.text[:200]}"
            assert r.status_code < 500, where
            text = r.text
            if template.startswith("/console") and r.headers.get("content-type", "").startswith("text/html"):
                # A page shows the caller's own query back in its search fields: that is not B's record.
                for value in query_naming_b(b).values():
                    text = text.replace(f'value="{value}"', 'value=""')
            if names and not SHARED_READS.match(f"{method} {template}"):
                assert r.status_code in (403, 404), where
            elif r.status_code < 300:
                assert not any(s in text for s in secrets), f"leaks commune B's records: {where}"
            elif r.status_code in (301, 302, 303, 307):
                assert not any(s in r.headers.get("location", "") for s in secrets), where
    for console in consoles.values():
        await console.__aexit__(None, None, None)
    assert walked >= 3 * 30

    # And commune B's things are as they were.
    token = b["token"]
    assert (await api.client.get("/api/v1/me", headers=auth(token))).status_code == 200
    assert (await api.client.get("/api/v1/me", headers={"X-API-Key": b["key"]})).status_code == 200
    dossier = (await api.client.get(f"/api/v1/dossiers/{b['dossier']['id']}", headers=auth(token))).json()
    assert dossier["subject"] == b["dossier"]["subject"] and dossier.get("state") == b["dossier"].get("state")
    content = await api.client.get(f"/api/v1/files/{b['file']['id']}/content", headers=auth(token))
    assert content.content == b["bytes"]
    session = (await api.client.get(f"/api/v1/uploads/{b['session']['id']}", headers=auth(token))).json()
    assert session["state"] == "open"
