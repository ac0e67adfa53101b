"""The change feed and push subscriptions: commit order without skips, scope, signed deliveries in order
per record, receivers that fail in each way a real one does, dead letters, the portal's shape."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest
from aiohttp import web
from litestar import Litestar
from litestar.testing import AsyncTestClient
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from storage import Database, Settings, object_store
from tests.conftest import make_client
from tests.factories import Api, Subtree, auth
from tests.pdfs import _one_text_page, build_pdf
from workers.deliveries import Dispatcher

pytestmark = pytest.mark.asyncio(loop_scope="session")

PROCEDURE = "1.001612"  # starter catalogue: result type KQ1


# -- the feed -----------------------------------------------------------------------------------------


async def read_all(
    client: AsyncTestClient[Litestar], token: str, after: str | None = None, **params: Any
) -> tuple[list[dict[str, Any]], str]:
    """Every change from ``after`` to the end, page by page; and the cursor to read on from."""
    items: list[dict[str, Any]] = []
    while True:
        query = {**params, **({"after": after} if after else {}), "limit": 1000}
        r = await client.get("/api/v1/feed", params=query, headers=auth(token))
        assert r.status_code == 200, r.text
        page = r.json()
        versions = [i["version"] for i in page["items"]]
        assert versions == sorted(versions), "a page is in commit order"
        items += page["items"]
        after = page["next"]
        if not page["more"]:
            assert after is not None
            return items, after


async def test_the_feed_shows_each_change_in_order_within_the_callers_units(
    api: Api, tree: Subtree, tree2: Subtree
) -> None:
    _, admin = await api.account("unit_admin", tree.district)
    _, operator = await api.account("operator", tree.commune(1))
    _, other_admin = await api.account("unit_admin", tree2.district)
    _, start = await read_all(api.client, admin)
    _, other_start = await read_all(api.client, other_admin)

    d = await api.dossier(operator, title="Đăng ký khai sinh")
    r = await api.client.patch(f"/api/v1/dossiers/{d['id']}", json={"title": "Khai sinh (sửa)"}, headers=auth(operator))
    assert r.status_code == 200, r.text
    r = await api.upload(
        operator,
        d["id"],
        build_pdf(_one_text_page(b"BT /F1 12 Tf 100 700 Td (Giay chung nhan cua luong thay doi) Tj ET")),
    )
    assert r.status_code == 201, r.text
    file_id = r.json()["id"]
    await api.run_worker()

    items, cursor = await read_all(api.client, admin, start)
    mine = [i for i in items if i["dossier_id"] == d["id"]]
    assert [i["kind"] for i in mine[:2]] == ["dossier.created", "dossier.changed"]
    assert [i["version"] for i in mine] == sorted(i["version"] for i in mine)
    assert mine[1]["record"]["title"] == "Khai sinh (sửa)" and mine[1]["unit"] == tree.commune(1)
    # the accepted file, and the dossier it made complete, in the same commit
    accepted = [i for i in mine if i["kind"] == "file.accepted"]
    assert len(mine) == 4 and len(accepted) == 1
    assert accepted[0]["id"] == file_id and accepted[0]["record"]["sha256"]
    assert accepted[0]["link"] == f"http://127.0.0.1:8000/api/v1/files/{file_id}"
    assert [i["record"]["complete"] for i in mine if i["kind"] == "dossier.changed"] == [False, True]

    # read on from the cursor: nothing new; the filters narrow
    again, _ = await read_all(api.client, admin, cursor)
    assert [i for i in again if i["dossier_id"] == d["id"]] == []
    files_only, _ = await read_all(api.client, admin, start, kinds="file.accepted,file.rejected")
    assert {i["kind"] for i in files_only} <= {"file.accepted", "file.rejected"} and files_only
    other_unit, _ = await read_all(api.client, admin, start, unit=tree.commune(2))
    assert [i for i in other_unit if i["dossier_id"] == d["id"]] == []

    # another district's administrator sees none of it, and cannot name the unit
    theirs, _ = await read_all(api.client, other_admin, other_start)
    assert [i for i in theirs if i["dossier_id"] == d["id"]] == []
    r = await api.client.get("/api/v1/feed", params={"unit": tree.commune(1)}, headers=auth(other_admin))
    assert r.status_code == 404


async def test_a_change_committed_late_is_never_skipped(api: Api, tree: Subtree, db: Database) -> None:
    """Transaction A changes a dossier first (its change gets the lower id) but commits after B; a reader
    that read B's change in between still gets A's afterwards."""
    _, admin = await api.account("unit_admin", tree.district)
    _, operator = await api.account("operator", tree.commune(1))
    first = await api.dossier(operator)
    second = await api.dossier(operator)
    r = await api.client.get("/api/v1/feed/end", headers=auth(admin))  # a consumer that wants what comes next
    cursor = r.json()["cursor"]
    assert (await read_all(api.client, admin, cursor))[0] == []

    slow = await asyncpg.connect(api.settings.database_url)
    try:
        tx = slow.transaction()
        await tx.start()
        await slow.execute("UPDATE dossiers SET title = 'A, committed late' WHERE id = $1", UUID(first["id"]))
        async with db.transaction() as conn:
            await conn.execute("UPDATE dossiers SET title = 'B, committed first' WHERE id = $1", UUID(second["id"]))
        seen, cursor = await read_all(api.client, admin, cursor)
        assert [i["record"]["title"] for i in seen] == ["B, committed first"]
        await tx.commit()
    finally:
        await slow.close()
    late, _ = await read_all(api.client, admin, cursor)
    assert [i["record"]["title"] for i in late] == ["A, committed late"]
    # the late change's id is the smaller one: a reader following ids would have skipped it
    ids = await db.pool.fetch(
        "SELECT id, pos FROM changes WHERE record = ANY($1) AND kind = 'dossier.changed' ORDER BY id",
        [first["id"], second["id"]],
    )
    assert [r["pos"] for r in ids] == sorted((r["pos"] for r in ids), reverse=True)


async def test_bad_cursors_and_kinds_get_clear_refusals(api: Api, db: Database) -> None:
    admin = await api.admin()
    for cursor, status, code in (
        ("not-a-cursor", 422, "invalid_cursor"),
        ("0123456789ab.5", 422, "cursor_from_another_warehouse"),
    ):
        r = await api.client.get("/api/v1/feed", params={"after": cursor}, headers=auth(admin))
        assert (r.status_code, r.json()["code"]) == (status, code), r.text
    instance = await db.pool.fetchval("SELECT instance FROM feed_head")
    head = await db.pool.fetchval("SELECT pos FROM feed_head")
    r = await api.client.get(
        "/api/v1/feed", params={"after": f"{instance.hex[:12]}.{head + 1000}"}, headers=auth(admin)
    )
    assert (r.status_code, r.json()["code"]) == (409, "cursor_ahead")
    r = await api.client.get("/api/v1/feed", params={"kinds": "dossier.created,file.exploded"}, headers=auth(admin))
    assert (r.status_code, r.json()["code"]) == (422, "unknown_kind") and "file.accepted" in r.json()["detail"]
    r = await api.client.get("/api/v1/feed", params={"limit": 100_000}, headers=auth(admin))
    assert (r.status_code, r.json()["code"]) == (422, "limit_too_large")


# -- a receiver ----------------------------------------------------------------------------------------


class Receiver:
    """A local HTTP receiver whose answers a test scripts: ``answer(request)`` returns (status, headers)."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.answer: Callable[[web.Request], Awaitable[tuple[int, dict[str, str]]]] = self._ok
        self.runner: web.AppRunner | None = None
        self.url = ""

    @staticmethod
    async def _ok(_request: web.Request) -> tuple[int, dict[str, str]]:
        return 204, {}

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        status, headers = await self.answer(request)
        self.received.append(
            {"headers": dict(request.headers), "body": body, "status": status, "at": time.time(), "path": request.path}
        )
        return web.Response(status=status, headers=headers, text="gone for good" if status == 410 else "")

    def answer_status(self, status: Callable[[], int]) -> None:
        """Answer each delivery with ``status()`` at the time it arrives."""

        async def scripted(_request: web.Request) -> tuple[int, dict[str, str]]:
            return status(), {}

        self.answer = scripted

    async def start(self) -> Receiver:
        app = web.Application()
        app.router.add_route("POST", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/hooks"
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    def delivered(self) -> list[dict[str, Any]]:
        """Successful deliveries, each a verified payload with its webhook-id."""
        import json

        return [{"id": r["headers"]["webhook-id"], **json.loads(r["body"])} for r in self.received if r["status"] < 300]


@pytest.fixture(scope="module")
def relaxed(prepared: Settings) -> Settings:
    """Receivers on this machine's loopback over http, and retries in fractions of a second."""
    return prepared.model_copy(
        update={
            "webhook_allow_private": True,
            "webhook_require_https": False,
            "webhook_backoff_max_seconds": 1.0,
            "webhook_timeout_seconds": 1.0,
            "public_base_url": "https://kho.langson.gov.vn",
        }
    )


@pytest.fixture(scope="module")
async def hooks(relaxed: Settings) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with make_client(relaxed) as client:
        yield client


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    yield r
    await r.stop()


@pytest.fixture
async def dispatcher(db: Database, relaxed: Settings) -> AsyncIterator[Dispatcher]:
    objects = object_store(relaxed)
    d = Dispatcher(db, relaxed, objects)
    yield d
    await d.close()
    await objects.aclose()


async def until(dispatcher: Dispatcher, done: Callable[[], bool], *, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, "the deliveries did not arrive in time"
        await dispatcher.round()
        await asyncio.sleep(0.05)
    await dispatcher.idle()


async def status_of(client: AsyncTestClient[Litestar], token: str, sub: dict[str, Any]) -> dict[str, Any]:
    r = await client.get(f"/api/v1/subscriptions/{sub['id']}", headers=auth(token))
    assert r.status_code == 200, r.text
    found: dict[str, Any] = r.json()
    return found


async def subscribe(client: AsyncTestClient[Litestar], token: str, url: str, **body: Any) -> dict[str, Any]:
    r = await client.post("/api/v1/subscriptions", json={"name": "cổng DVC", "url": url, **body}, headers=auth(token))
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    assert created["secret"].startswith("whsec_")
    return created


async def test_deliveries_are_signed_and_arrive_in_order_per_record(
    api: Api, tree: Subtree, hooks: AsyncTestClient[Litestar], receiver: Receiver, dispatcher: Dispatcher
) -> None:
    _, admin = await api.account("unit_admin", tree.district)
    _, operator = await api.account("operator", tree.commune(1))
    sub = await subscribe(hooks, admin, receiver.url, kinds=["dossier.created", "dossier.changed"])
    dossiers = [await api.dossier(operator, title=f"hồ sơ {n}") for n in range(3)]
    for n in range(3):
        for d in dossiers:
            r = await api.client.patch(
                f"/api/v1/dossiers/{d['id']}", json={"title": f"lần sửa {n}"}, headers=auth(operator)
            )
            assert r.status_code == 200, r.text
    await until(dispatcher, lambda: len(receiver.delivered()) >= 12)

    signer = Webhook(sub["secret"])
    for r in receiver.received:
        signer.verify(r["body"], r["headers"])  # raises if the signature or timestamp is wrong
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "QUJD" * 8).verify(receiver.received[0]["body"], receiver.received[0]["headers"])
    got = receiver.delivered()
    assert len({g["id"] for g in got}) == 12
    for d in dossiers:
        mine = [g["data"] for g in got if g["data"]["id"] == d["id"]]
        assert [m["record"]["title"] for m in mine] == [d["title"], "lần sửa 0", "lần sửa 1", "lần sửa 2"]
        assert [m["version"] for m in mine] == sorted(m["version"] for m in mine)
    assert got[0]["type"] in ("dossier.created", "dossier.changed") and got[0]["data"]["link"].startswith("https://")

    status = await status_of(hooks, admin, sub)
    assert status["pending"] == 0 and status["dead"] == 0 and status["last_delivered_at"] and status["secret"] is None


async def test_a_receiver_down_for_a_while_gets_everything_once_when_it_returns(
    api: Api, tree: Subtree, hooks: AsyncTestClient[Litestar], receiver: Receiver, dispatcher: Dispatcher
) -> None:
    _, admin = await api.account("unit_admin", tree.district)
    _, operator = await api.account("operator", tree.commune(1))
    sub = await subscribe(hooks, admin, receiver.url, kinds=["dossier.created"])
    down = True
    receiver.answer_status(lambda: 503 if down else 200)
    made = [await api.dossier(operator) for _ in range(5)]
    await until(dispatcher, lambda: len(receiver.received) >= 3)
    status = await status_of(hooks, admin, sub)
    assert status["last_error"].startswith("the receiver answered 503") and status["last_status"] == 503
    assert status["pending"] == 5 and status["lag_seconds"] > 0 and status["dead"] == 0

    down = False
    await until(dispatcher, lambda: len(receiver.delivered()) >= 5)
    ok = receiver.delivered()
    assert sorted(g["data"]["id"] for g in ok) == sorted(d["id"] for d in made)
    assert len({g["id"] for g in ok}) == 5  # each delivery id taken once
    tried = [r["headers"]["webhook-id"] for r in receiver.received]
    assert set(tried) == {g["id"] for g in ok}  # a retry carries the same id
    status = await status_of(hooks, admin, sub)
    assert status["pending"] == 0 and status["retry_at"] is None


async def test_410_pauses_the_subscription_and_resuming_sends_what_waited(
    api: Api, tree: Subtree, hooks: AsyncTestClient[Litestar], receiver: Receiver, dispatcher: Dispatcher
) -> None:
    _, admin = await api.account("unit_admin", tree.district)
    _, operator = await api.account("operator", tree.commune(1))
    sub = await subscribe(hooks, admin, receiver.url, kinds=["dossier.created"])
    gone = True
    receiver.answer_status(lambda: 410 if gone else 200)
    await api.dossier(operator)
    await api.dossier(operator)
    await until(dispatcher, lambda: len(receiver.received) >= 1)
    status = await status_of(hooks, admin, sub)
    assert status["state"] == "paused" and "410 Gone" in status["paused_reason"] and status["pending"] == 2
    tried = len(receiver.received)  # those already on their way when the first 410 came
    for _ in range(5):
        await dispatcher.round()
    await dispatcher.idle()
    assert len(receiver.received) == tried  # a paused subscription is not tried

    gone = False
    r = await hooks.post(f"/api/v1/subscriptions/{sub['id']}/resume", headers=auth(admin))
    assert r.status_code == 200 and r.json()["state"] == "active", r.text
    await until(dispatcher, lambda: len(receiver.delivered()) >= 2)


async def test_redirects_and_slow_receivers_fail_without_holding_up_another_receiver(
    api: Api, tree: Subtree, hooks: AsyncTestClient[Litestar], dispatcher: Dispatcher
) -> None:
    _, admin = await api.account("unit_admin", tree.district)
    _, operator = await api.account("operator", tree.commune(1))
    slow, moved, fast, target = [await Receiver().start() for _ in range(4)]
    try:

        async def sleepy(_request: web.Request) -> tuple[int, dict[str, str]]:
            await asyncio.sleep(3)
            return 200, {}

        async def redirect(_request: web.Request) -> tuple[int, dict[str, str]]:
            return 307, {"Location": target.url}

        slow.answer, moved.answer = sleepy, redirect
        subs = {
            name: await subscribe(hooks, admin, r.url, kinds=["dossier.created"])
            for name, r in (("slow", slow), ("moved", moved), ("fast", fast))
        }
        for _ in range(6):
            await api.dossier(operator)
        started = time.monotonic()
        await until(dispatcher, lambda: len(fast.delivered()) >= 6)
        assert time.monotonic() - started < 5  # the slow receiver's deliveries hold only its own slots
        await until(dispatcher, lambda: len(moved.received) >= 1 and len(slow.received) >= 1)
        await asyncio.sleep(1.2)
        await dispatcher.round()
        await dispatcher.idle()
        assert target.received == []  # a redirect is not followed
        moved_status = await status_of(hooks, admin, subs["moved"])
        assert "redirected to" in moved_status["last_error"] and moved_status["last_status"] == 307
        slow_status = await status_of(hooks, admin, subs["slow"])
        assert slow_status["last_error"].startswith("no full answer within") and slow_status["pending"] == 6
    finally:
        for r in (slow, moved, fast, target):
            await r.stop()


async def test_deliveries_past_the_retry_time_are_dead_letters_and_can_be_replayed(
    api: Api,
    tree: Subtree,
    hooks: AsyncTestClient[Litestar],
    receiver: Receiver,
    db: Database,
    relaxed: Settings,
) -> None:
    _, admin = await api.account("unit_admin", tree.district)
    _, operator = await api.account("operator", tree.commune(1))
    sub = await subscribe(hooks, admin, receiver.url, kinds=["dossier.created"])
    broken = True
    receiver.answer_status(lambda: 422 if broken else 200)
    made = [await api.dossier(operator) for _ in range(3)]
    quick = relaxed.model_copy(update={"webhook_retry_hours": 1 / 3600})  # one second
    objects = object_store(quick)
    dispatcher = Dispatcher(db, quick, objects)
    try:
        deadline = time.monotonic() + 15
        while True:
            status = await status_of(hooks, admin, sub)
            if status["dead"] == 3:
                break
            assert time.monotonic() < deadline, status
            await dispatcher.round()
            await dispatcher.idle()
            await asyncio.sleep(0.1)
        r = await hooks.get(f"/api/v1/subscriptions/{sub['id']}/dead-letters", headers=auth(admin))
        dead = r.json()["items"]
        assert [d["record"] for d in dead] == [d["id"] for d in made]
        assert dead[0]["last_status"] == 422 and dead[0]["attempts"] >= 1 and dead[0]["kind"] == "dossier.created"

        broken = False
        r = await hooks.post(
            f"/api/v1/subscriptions/{sub['id']}/dead-letters/replay", json={"ids": [dead[0]["id"]]}, headers=auth(admin)
        )
        assert r.json() == {"replayed": 1}
        r = await hooks.post(f"/api/v1/subscriptions/{sub['id']}/dead-letters/replay", json={}, headers=auth(admin))
        assert r.json() == {"replayed": 2}
        await until(dispatcher, lambda: len(receiver.delivered()) >= 3)
        assert {g["id"] for g in receiver.delivered()} == {d["id"] for d in dead}  # the same delivery ids
    finally:
        await dispatcher.close()
        await objects.aclose()


async def test_the_ssrf_guard_refuses_private_receivers(
    api: Api, tree: Subtree, receiver: Receiver, hooks: AsyncTestClient[Litestar], db: Database, relaxed: Settings
) -> None:
    """On by default: no loopback, private or link-local receiver, checked at registration and again
    before each delivery (a name may resolve elsewhere later)."""
    _, admin = await api.account("unit_admin", tree.district)
    for url in (
        "https://127.0.0.1/hook",
        "https://localhost:8443/hook",
        "https://10.1.2.3/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "http://example.org/hook",
        "https://user:pw@example.org/hook",
        "ftp://example.org/hook",
    ):
        r = await api.client.post("/api/v1/subscriptions", json={"name": "x", "url": url}, headers=auth(admin))
        assert (r.status_code, r.json()["code"]) == (422, "receiver_refused"), (url, r.text)

    # registered where private receivers are allowed, delivered by a worker where they are not
    _, operator = await api.account("operator", tree.commune(1))
    sub = await subscribe(hooks, admin, receiver.url, kinds=["dossier.created"])
    await api.dossier(operator)
    guarded = relaxed.model_copy(update={"webhook_allow_private": False})
    objects = object_store(guarded)
    dispatcher = Dispatcher(db, guarded, objects)
    try:
        await dispatcher.round()
        await dispatcher.idle()
    finally:
        await dispatcher.close()
        await objects.aclose()
    assert receiver.received == []
    status = await status_of(hooks, admin, sub)
    assert "127.0.0.1" in status["last_error"] and "private" in status["last_error"] and status["pending"] == 1


async def test_subscriptions_stay_within_the_administrators_units(
    api: Api, tree: Subtree, tree2: Subtree, hooks: AsyncTestClient[Litestar], receiver: Receiver
) -> None:
    _, admin = await api.account("unit_admin", tree.district)
    _, other = await api.account("unit_admin", tree2.district)
    _, operator = await api.account("operator", tree.commune(1))
    r = await hooks.post(
        "/api/v1/subscriptions",
        json={"name": "x", "url": receiver.url, "units": [tree2.commune(1)]},
        headers=auth(admin),
    )
    assert (r.status_code, r.json()["code"]) == (404, "unit_not_found")
    r = await hooks.post("/api/v1/subscriptions", json={"name": "x", "url": receiver.url}, headers=auth(operator))
    assert r.status_code == 403
    sub = await subscribe(hooks, admin, receiver.url, units=[tree.commune(1)])
    assert sub["units"] == [tree.commune(1)]
    for method, path, body in (
        ("GET", "", None),
        ("PATCH", "", {"name": "mine now"}),
        ("POST", "/pause", None),
        ("POST", "/resume", None),
        ("POST", "/secret", None),
        ("GET", "/dead-letters", None),
        ("POST", "/dead-letters/replay", {}),
        ("DELETE", "", None),
    ):
        r = await hooks.request(method, f"/api/v1/subscriptions/{sub['id']}{path}", json=body, headers=auth(other))
        assert r.status_code == 404, (method, path, r.text)
    listed = (await hooks.get("/api/v1/subscriptions", headers=auth(other))).json()
    assert sub["id"] not in [s["id"] for s in listed]
    # a portal subscription carries only results; the kinds it may have are said
    r = await hooks.post(
        "/api/v1/subscriptions",
        json={"name": "x", "url": receiver.url, "profile": "portal", "kinds": ["dossier.created"]},
        headers=auth(admin),
    )
    assert (r.status_code, r.json()["code"]) == (422, "unknown_kind") and "result.issued" in r.json()["detail"]


async def test_a_disabled_creator_stops_the_subscription_until_another_admin_resumes_it(
    api: Api, tree: Subtree, hooks: AsyncTestClient[Litestar], receiver: Receiver, dispatcher: Dispatcher
) -> None:
    login, admin = await api.account("unit_admin", tree.district)
    _, successor = await api.account("unit_admin", tree.district)
    _, operator = await api.account("operator", tree.commune(1))
    sub = await subscribe(hooks, admin, receiver.url, kinds=["dossier.created"])
    await api.db.pool.execute("UPDATE accounts SET state = 'disabled' WHERE login = $1", login)
    await api.dossier(operator)
    for _ in range(3):
        await dispatcher.round()
    await dispatcher.idle()
    assert receiver.received == []
    r = await hooks.post(f"/api/v1/subscriptions/{sub['id']}/resume", headers=auth(successor))
    assert r.status_code == 200 and r.json()["created_by"] != sub["created_by"]
    await until(dispatcher, lambda: len(receiver.delivered()) >= 1)


async def test_a_rotated_secret_signs_beside_the_old_one_for_a_while(
    api: Api, tree: Subtree, hooks: AsyncTestClient[Litestar], receiver: Receiver, dispatcher: Dispatcher
) -> None:
    _, admin = await api.account("unit_admin", tree.district)
    _, operator = await api.account("operator", tree.commune(1))
    sub = await subscribe(hooks, admin, receiver.url, kinds=["dossier.created"])
    r = await hooks.post(f"/api/v1/subscriptions/{sub['id']}/secret", headers=auth(admin))
    assert r.status_code == 200 and r.json()["secret"] != sub["secret"] and r.json()["previous_secret_until"]
    await api.dossier(operator)
    await until(dispatcher, lambda: len(receiver.delivered()) >= 1)
    got = receiver.received[0]
    assert len(got["headers"]["webhook-signature"].split(" ")) == 2
    Webhook(sub["secret"]).verify(got["body"], got["headers"])
    Webhook(r.json()["secret"]).verify(got["body"], got["headers"])


async def test_the_portal_profile_carries_the_result_record_and_a_working_link(
    api: Api, tree: Subtree, hooks: AsyncTestClient[Litestar], receiver: Receiver, dispatcher: Dispatcher
) -> None:
    _, admin = await api.account("unit_admin", tree.district)
    _, operator = await api.account("operator", tree.commune(1))
    sub = await subscribe(hooks, admin, receiver.url, profile="portal")
    assert sub["kinds"] == ["result.issued", "result.withdrawn"]
    dossier = await api.dossier(
        operator,
        procedure_code=PROCEDURE,
        subject={"name": "Hoàng Văn Páo", "id_kind": "cccd", "id_number": "020190004321"},
    )
    data = build_pdf(_one_text_page(b"BT /F1 14 Tf 150 600 Td (Giay khai sinh) Tj ET"))
    r = await api.upload(operator, dossier["id"], data, kind="result", headers={"X-Part-Code": "KQ1"})
    assert r.status_code == 201, r.text
    await api.run_worker()
    f = await api.file(operator, r.json()["id"])
    assert f["state"] == "ready" and f["result_code"]
    await until(dispatcher, lambda: len(receiver.delivered()) >= 1)
    record = receiver.delivered()[0]
    assert record["type"] == "result.issued"
    portal = record["data"]
    assert portal["resultCode"] == f["result_code"] and portal["dossierCode"] == dossier["code"]
    assert portal["procedureCode"] == PROCEDURE and portal["holderId"] == "020190004321"
    assert portal["holderName"] == "Hoàng Văn Páo" and portal["issuerCode"] == tree.commune(1)
    assert portal["state"] == 1 and portal["stateName"] == "valid" and portal["documentName"]
    assert portal["sha256"] == hashlib.sha256(data).hexdigest()
    async with httpx.AsyncClient() as http:
        linked = await http.get(portal["fileUrl"])
    assert linked.status_code == 200 and hashlib.sha256(linked.content).hexdigest() == portal["sha256"]

    # deleting the file withdraws the code, and the portal hears of it
    r = await api.client.delete(f"/api/v1/files/{f['id']}", headers=auth(admin))
    assert r.status_code in (200, 204), r.text
    await until(dispatcher, lambda: len(receiver.delivered()) >= 2)
    withdrawn = receiver.delivered()[1]
    assert withdrawn["type"] == "result.withdrawn" and withdrawn["data"]["state"] == 3
    assert withdrawn["data"]["fileUrl"] is None and withdrawn["data"]["version"] > portal["version"]


async def test_a_receiver_that_trickles_its_answer_is_cut_off(
    api: Api, tree: Subtree, hooks: AsyncTestClient[Litestar], dispatcher: Dispatcher
) -> None:
    """Each read is quick, the whole answer never ends: the exchange as a whole has the time limit."""

    async def trickle(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(status=500)
        await response.prepare(request)
        for _ in range(100):
            await response.write(b".")
            await asyncio.sleep(0.2)
        return response

    app = web.Application()
    app.router.add_post("/hooks", trickle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        _, admin = await api.account("unit_admin", tree.district)
        _, operator = await api.account("operator", tree.commune(1))
        sub = await subscribe(hooks, admin, f"http://127.0.0.1:{port}/hooks", kinds=["dossier.created"])
        await api.dossier(operator)
        started = time.monotonic()
        await dispatcher.round()
        await dispatcher.idle()
        assert time.monotonic() - started < 3  # the setting's 1 s, not the receiver's 20
        status = await status_of(hooks, admin, sub)
        assert status["last_error"].startswith("no full answer within 1 s") and status["pending"] == 1
    finally:
        await runner.cleanup()
