"""Limits per account and per unit, kept in Redis: 429 with Retry-After and RateLimit headers."""

from __future__ import annotations

import pytest

from tests.conftest import make_client
from tests.factories import Api, Subtree, auth
from tests.pdfs import text_pdf
from warehouse.fair_share import upload_slot

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_requests_over_the_account_limit_get_429_and_others_go_on(api: Api, tree: Subtree) -> None:
    strict = api.settings.model_copy(update={"rate_account_rps": 3, "rate_unit_rps": 1000})
    _, greedy = await api.account("operator", tree.commune(1))
    _, calm = await api.account("operator", tree.commune(2))
    async with make_client(strict) as client:
        statuses = [(await client.get("/api/v1/me", headers=auth(greedy))) for _ in range(6)]
        assert [r.status_code for r in statuses[:3]] == [200, 200, 200]
        refused = statuses[-1]
        assert refused.status_code == 429
        assert refused.json()["code"] == "rate_limited"
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.headers["ratelimit-limit"] == "3"
        assert refused.headers["ratelimit-remaining"] == "0"
        ok = await client.get("/api/v1/me", headers=auth(calm))
        assert ok.status_code == 200
        assert ok.headers["ratelimit-limit"] == "3"


async def test_the_unit_limit_binds_all_of_its_accounts(api: Api, tree: Subtree) -> None:
    strict = api.settings.model_copy(update={"rate_account_rps": 1000, "rate_unit_rps": 4})
    tokens = [(await api.account("operator", tree.commune(1)))[1] for _ in range(3)]
    async with make_client(strict) as client:
        codes = [(await client.get("/api/v1/me", headers=auth(t))).status_code for t in tokens * 2]
    assert codes.count(429) >= 2


async def test_an_account_override_raises_its_own_limit(api: Api, tree: Subtree) -> None:
    strict = api.settings.model_copy(update={"rate_account_rps": 2, "rate_unit_rps": 1000})
    admin = await api.admin()
    _, token = await api.account("operator", tree.commune(1))
    me = (await api.client.get("/api/v1/me", headers=auth(token))).json()
    r = await api.client.patch(
        f"/api/v1/accounts/{me['id']}", json={"limits": {"requests_per_second": 50}}, headers=auth(admin)
    )
    assert r.status_code == 200 and r.json()["limits"]["requests_per_second"] == 50
    async with make_client(strict) as client:
        codes = [(await client.get("/api/v1/me", headers=auth(token))).status_code for _ in range(6)]
    assert codes == [200] * 6


async def test_concurrent_uploads_are_capped_per_account(api: Api, tree: Subtree) -> None:
    strict = api.settings.model_copy(update={"rate_account_uploads": 1})
    login, token = await api.account("operator", tree.commune(1))
    dossier = await api.dossier(token)
    account = await api.db.pool.fetchrow("SELECT id FROM accounts WHERE login = $1", login)
    from storage import Accounts

    acct = await Accounts(api.db.pool).get(account["id"])
    assert acct is not None
    from types import SimpleNamespace

    from storage import Counters, Queue

    queue = Queue.from_url(strict.redis_url)  # a second API process, as far as Redis can tell
    elsewhere = SimpleNamespace(settings=strict, counters=Counters(queue.redis))
    async with make_client(strict) as client:
        async with upload_slot(elsewhere, acct, None):  # type: ignore[arg-type]  # one upload already running
            r = await client.post(
                f"/api/v1/dossiers/{dossier['id']}/files",
                content=text_pdf(),
                headers={**auth(token), "Content-Type": "application/pdf", "X-File-Kind": "component"},
            )
            assert (r.status_code, r.json()["code"]) == (429, "too_many_uploads")
        r = await client.post(
            f"/api/v1/dossiers/{dossier['id']}/files",
            content=text_pdf(),
            headers={**auth(token), "Content-Type": "application/pdf", "X-File-Kind": "component"},
        )
        assert r.status_code == 201
    await queue.close()
