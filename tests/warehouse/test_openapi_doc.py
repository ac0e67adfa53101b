"""The OpenAPI document tells a client developer what the API really does, and the API answers its
errors in Vietnamese to a client that asks."""

from __future__ import annotations

import re
from pathlib import Path

from tests.factories import Api, Subtree, auth
from warehouse.messages_vi import DETAILS, wants_vietnamese
from warehouse.refusals import Refusal

ROOT = Path(__file__).resolve().parents[2]
KINDS = "|".join(kind.__name__ for kind in Refusal.__subclasses__() if kind.__module__ == "warehouse.refusals")
RAISED = rf"(?:Problem\(\s*\d{{3}},|\b(?:{KINDS})\()\s*\"([a-z_]+)\""


async def test_every_operation_is_described_and_every_format_declared(api: Api) -> None:
    doc = (await api.client.get("/schema/openapi.json")).json()
    undescribed = [
        f"{method.upper()} {path}"
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if isinstance(op, dict) and "responses" in op and len(op.get("description", "")) < 20
    ]
    assert not undescribed, undescribed
    provision = doc["paths"]["/api/v1/accounts/provision"]["post"]["responses"]["201"]["content"]
    assert provision["application/json"]["schema"] == {"$ref": "#/components/schemas/ProvisionOut"}
    assert "text/csv" in provision
    report = doc["paths"]["/api/v1/reports/progress"]["get"]["responses"]["200"]["content"]
    assert {"application/json", "text/csv", "image/png"} <= set(report) and any("spreadsheet" in m for m in report)
    problem = doc["components"]["schemas"]["Problem"]["properties"]
    assert {"errors", "detail_en", "instance", "code"} <= set(problem)


async def test_a_validation_error_has_the_declared_shape(api: Api, tree: Subtree) -> None:
    _, token = await api.account("operator", tree.commune(1))
    r = await api.client.post("/api/v1/dossiers", json={"procedure_code": "x"}, headers=auth(token))
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["code"] == "invalid_fields" and all({"field", "message"} <= set(e) for e in body["errors"])


async def test_errors_come_in_vietnamese_when_asked(api: Api) -> None:
    r = await api.client.get("/api/v1/dossiers", headers={"Accept-Language": "vi-VN,vi;q=0.9,en;q=0.5"})
    assert r.status_code == 401 and r.headers.get("content-language") == "vi"
    body = r.json()
    assert body["code"] == "unauthenticated" and body["detail"].startswith("Hãy đăng nhập")
    assert body["title"] == "Chưa đăng nhập" and "Sign in" in body["detail_en"]
    english = (await api.client.get("/api/v1/dossiers", headers={"Accept-Language": "en;q=0.9, vi;q=0.8"})).json()
    assert "Sign in" in english["detail"] and "detail_en" not in english


def test_accept_language_is_read_with_its_qualities() -> None:
    assert wants_vietnamese("vi")
    assert wants_vietnamese("vi-VN, en;q=0.8")
    assert not wants_vietnamese("en-US,en;q=0.9,vi;q=0.8")
    assert not wants_vietnamese(None) and not wants_vietnamese("fr") and not wants_vietnamese("vi;q=x")


def test_every_problem_code_the_api_raises_has_its_vietnamese_sentence() -> None:
    raised: set[str] = set()
    for path in (ROOT / "warehouse").rglob("*.py"):
        if "client" in path.parts:
            continue
        text = path.read_text(encoding="utf-8")
        raised |= set(re.findall(RAISED, text))
        raised |= set(re.findall(r"\d{3}: \(\"([a-z_]+)\", \"", text))  # the codes of the framework's own errors
    assert len(raised) > 40
    assert not raised - set(DETAILS), sorted(raised - set(DETAILS))
