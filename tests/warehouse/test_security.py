"""Attacks a hostile commune would try, each one a regression test of a hole found from outside."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
from typing import Any

import httpx
import pytest

from loadtests.pdfgen import scanned_pdf
from tests.conftest import make_client
from tests.factories import Api, Subtree, auth, raw_s3
from tests.pdfs import javascript_pdf
from tests.warehouse.test_resumable import start

pytestmark = pytest.mark.asyncio(loop_scope="session")


def same_size(data: bytes, size: int) -> bytes:
    """``data`` padded with a PDF comment to exactly ``size`` bytes (readers ignore what follows %%EOF)."""
    assert len(data) <= size
    return data + b"%" * (size - len(data))


async def direct_session(api: Api, token: str, dossier_id: str, data: bytes) -> dict[str, Any]:
    return await start(api.client, token, dossier_id, data, mode="direct")


def hostile_forms(fields: dict[str, str], hostile: bytes) -> list[list[tuple[str, str]]]:
    """The policy's fields as a hostile client would bend them to slip other bytes past the store: as
    given, with another checksum added, with the pinned SHA-256 replaced or named twice."""
    import zlib

    crc32 = base64.b64encode(zlib.crc32(hostile).to_bytes(4, "big")).decode()
    other = base64.b64encode(hashlib.sha256(hostile).digest()).decode()
    given = list(fields.items())
    forms = [given, [*given, ("x-amz-checksum-crc32", crc32)]]
    if "x-amz-checksum-sha256" in fields:
        unpinned = [(k, v) for k, v in given if k != "x-amz-checksum-sha256"]
        forms += [
            [*unpinned, ("x-amz-checksum-sha256", other)],
            [*unpinned, ("x-amz-checksum-sha256", other), ("x-amz-checksum-sha256", fields["x-amz-checksum-sha256"])],
            [*given, ("x-amz-checksum-sha256", other)],
            [(k, v) for k, v in given if not k.startswith("x-amz-checksum-")],
        ]
    return forms


async def post_form(s3: httpx.AsyncClient, url: str, form: list[tuple[str, str]], body: bytes) -> httpx.Response:
    """A POST upload with exactly these fields, in this order (a field may come twice), then the file."""
    return await s3.post(url, files=[*((k, (None, v)) for k, v in form), ("file", ("x.pdf", body))])


@pytest.mark.parametrize("pinned", [True, False], ids=["pinned", "staged"])
async def test_a_direct_upload_policy_cannot_change_bytes_after_completion(
    api: Api, tree: Subtree, pinned: bool
) -> None:
    """Commune A completes a direct upload; commune B uploads the same bytes (deduplicated to A's
    object); A posts other bytes with its old policy, bending its fields every way it can. Nothing
    either commune downloads changes. On a store that checks a POST's SHA-256 the policy names the
    file's own key and pins its SHA-256, and the store refuses every such POST; otherwise the policy
    names a staging key the record never points at."""
    settings = api.settings.model_copy(update={"direct_upload_pinned": pinned})
    async with make_client(settings) as client:
        await _policy_used_again(Api(client, api.db, settings), tree, pinned)


async def _policy_used_again(api: Api, tree: Subtree, pinned: bool) -> None:
    _, a = await api.account("operator", tree.commune(1))
    _, b = await api.account("operator", tree.commune(2))
    original = scanned_pdf(pages=1, dpi=100, seed=151 if pinned else 161)
    hostile = same_size(javascript_pdf(), len(original))
    dossier_a = await api.dossier(a)
    session = await direct_session(api, a, dossier_a["id"], original)
    direct = session["direct"]
    if pinned:
        assert direct["fields"]["x-amz-checksum-sha256"] == base64.b64encode(hashlib.sha256(original).digest()).decode()
    else:
        assert not direct["fields"]["key"].startswith("originals/"), "the client never holds a file's own key"
    async with httpx.AsyncClient(timeout=60) as s3:
        if pinned:  # before completion too, only the declared bytes are taken
            for form in hostile_forms(direct["fields"], hostile):
                assert (await post_form(s3, direct["url"], form, hostile)).status_code >= 400, form
        posted = await s3.post(direct["url"], data=direct["fields"], files={"file": ("x.pdf", original)})
        assert posted.status_code < 300, posted.text
        r = await api.client.post(f"/api/v1/uploads/{session['id']}/complete", headers=auth(a))
        assert r.status_code == 201, r.text
        file_a = r.json()
        dossier_b = await api.dossier(b)
        r = await api.upload(b, dossier_b["id"], original)
        assert r.status_code == 201, r.text
        file_b = r.json()
        # The same policy again, with other bytes of the same size, its fields bent every way.
        for form in hostile_forms(direct["fields"], hostile):
            answer = await post_form(s3, direct["url"], form, hostile)
            if pinned:
                assert answer.status_code >= 400, form
    for token, f in ((a, file_a), (b, file_b)):
        r = await api.client.get(f"/api/v1/files/{f['id']}/content", headers=auth(token))
        assert r.status_code == 200
        assert r.content == original
        redirect = await api.client.get(
            f"/api/v1/files/{f['id']}/content?redirect=1", headers=auth(token), follow_redirects=False
        )
        async with httpx.AsyncClient(timeout=60) as s3:
            assert (await s3.get(redirect.headers["location"])).content == original
    # Completing again answers with the same file; the hostile bytes are nowhere under a record.
    r = await api.client.post(f"/api/v1/uploads/{session['id']}/complete", headers=auth(a))
    assert r.status_code == 201 and r.json()["id"] == file_a["id"]
    key = await api.db.pool.fetchval("SELECT object_key FROM files WHERE id = $1", file_a["id"])
    stored = raw_s3(api.settings).get_object(bucket_name=api.settings.s3_bucket, object_name=key)
    try:
        assert stored.read() == original
    finally:
        stored.close()
        stored.release_conn()


async def test_a_direct_policy_lives_minutes_and_the_status_hands_out_a_fresh_one(api: Api, tree: Subtree) -> None:
    import json
    from datetime import UTC, datetime

    _, token = await api.account("operator", tree.commune(1))
    dossier = await api.dossier(token)
    data = scanned_pdf(pages=1, dpi=100, seed=152)
    session = await direct_session(api, token, dossier["id"], data)
    policy = json.loads(base64.b64decode(session["direct"]["fields"]["policy"]))
    expires = datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00"))
    lifetime = (expires - datetime.now(UTC)).total_seconds()
    assert 0 < lifetime <= api.settings.direct_upload_ttl_seconds + 5
    r = await api.client.get(f"/api/v1/uploads/{session['id']}", headers=auth(token))
    assert r.status_code == 200 and r.json()["direct"]["fields"]["key"] == session["direct"]["fields"]["key"]
    async with httpx.AsyncClient(timeout=60) as s3:
        fresh = r.json()["direct"]
        assert (await s3.post(fresh["url"], data=fresh["fields"], files={"file": ("x.pdf", data)})).status_code < 300
    r = await api.client.post(f"/api/v1/uploads/{session['id']}/complete", headers=auth(token))
    assert r.status_code == 201, r.text
    r = await api.client.get(f"/api/v1/uploads/{session['id']}", headers=auth(token))
    assert r.json()["state"] == "completed" and r.json()["direct"] is None


async def test_a_download_is_cut_off_when_the_stored_bytes_changed_under_the_record(api: Api, tree: Subtree) -> None:
    _, token = await api.account("operator", tree.commune(1))
    dossier = await api.dossier(token)
    original = scanned_pdf(pages=1, dpi=100, seed=153)
    r = await api.upload(token, dossier["id"], original)
    assert r.status_code == 201
    key = await api.db.pool.fetchval("SELECT object_key FROM files WHERE id = $1", r.json()["id"])
    import io

    tampered = same_size(javascript_pdf(), len(original))
    raw_s3(api.settings).put_object(
        bucket_name=api.settings.s3_bucket, object_name=key, data=io.BytesIO(tampered), length=len(tampered)
    )
    try:
        got = await api.client.get(f"/api/v1/files/{r.json()['id']}/content", headers=auth(token))
    except Exception:  # the body was cut off: the client has no complete file
        return
    assert got.content != tampered and len(got.content) < len(tampered)


class PeakRss:
    """The largest resident memory of a process and its children while the block runs."""

    def __init__(self, pid: int) -> None:
        import psutil

        self.process = psutil.Process(pid)
        self.peak = 0
        self._stop = False

    def now(self) -> int:
        import psutil

        total = 0
        for p in [self.process, *self.process.children(recursive=True)]:
            with contextlib.suppress(psutil.NoSuchProcess):
                total += p.memory_info().rss
        return total

    def __enter__(self) -> PeakRss:
        import threading

        def sample() -> None:
            import time

            while not self._stop:
                self.peak = max(self.peak, self.now())
                time.sleep(0.02)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop = True
        self._thread.join()


MiB = 1024 * 1024


async def test_one_operator_cannot_grow_the_api_with_form_fields_or_parallel_parts(api: Api, tree: Subtree) -> None:
    from tests.factories import LiveServer

    _, token = await api.account("operator", tree.commune(1))
    dossier = await api.dossier(token)
    part = 5 * MiB
    with LiveServer(
        WAREHOUSE_UPLOAD_PART_BYTES=str(part), WAREHOUSE_RATE_ACCOUNT_RPS="1000", WAREHOUSE_RATE_UNIT_RPS="1000"
    ) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=120) as http:
            await http.get("/api/v1/me", headers=auth(token))
            baseline = PeakRss(server.proc.pid).now()
            with PeakRss(server.proc.pid) as rss:
                # Fifty thousand form fields before the file.
                boundary = "b0undary"
                fields = b"".join(
                    f'--{boundary}\r\nContent-Disposition: form-data; name="f{i}"\r\n\r\n{"x" * 200}\r\n'.encode()
                    for i in range(50_000)
                )
                body = fields + f"--{boundary}--\r\n".encode()
                r = await http.post(
                    f"/api/v1/dossiers/{dossier['id']}/files",
                    content=body,
                    headers={**auth(token), "Content-Type": f"multipart/form-data; boundary={boundary}"},
                )
                assert (r.status_code, r.json()["code"]) == (413, "form_too_large"), r.text
                # Forty-eight parts of one upload at once.
                data = b"%PDF-1.4\n" + b"\0" * (3 * part)
                session = await start(http, token, dossier["id"], data)
                import asyncio

                async def send(i: int) -> int:
                    n = 1 + i % 3
                    chunk = data[(n - 1) * part : n * part]
                    got = await http.put(
                        f"/api/v1/uploads/{session['id']}/parts/{n}", content=chunk, headers=auth(token)
                    )
                    return got.status_code

                statuses = await asyncio.gather(*(send(i) for i in range(48)))
                assert set(statuses) <= {200, 429}, statuses
                assert 429 in statuses, "parts take upload slots like any upload"
    grown = (rss.peak - baseline) / MiB
    assert grown < 100, f"the API grew by {grown:.0f} MiB"


async def raw_request(url: str, head: str, body_chunks: list[bytes], *, pause: float = 0.0) -> tuple[int, float]:
    """Send a request by hand (to lie about its length or crawl), then read the status line: the
    status and the seconds it took."""
    import asyncio
    import time
    from urllib.parse import urlparse

    where = urlparse(url)
    reader, writer = await asyncio.open_connection(where.hostname, where.port)
    started = time.monotonic()
    writer.write(head.encode())
    await writer.drain()

    async def crawl() -> None:
        try:
            for chunk in body_chunks:
                writer.write(chunk)
                await writer.drain()
                await asyncio.sleep(pause)
        except (ConnectionError, OSError):
            pass

    sender = asyncio.create_task(crawl())
    try:
        line = await asyncio.wait_for(reader.readline(), timeout=60)
    finally:
        sender.cancel()
        writer.close()
    return int(line.split()[1]), time.monotonic() - started


def request_head(method: str, path: str, token: str, length: int, content_type: str = "application/pdf") -> str:
    return (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: {content_type}\r\nX-File-Kind: component\r\nContent-Length: {length}\r\n\r\n"
    )


async def test_crawling_stalled_and_lying_bodies_end_quickly_and_free_their_slot(api: Api, tree: Subtree) -> None:
    from tests.factories import LiveServer

    _, token = await api.account("operator", tree.commune(1))
    dossier = await api.dossier(token)
    path = f"/api/v1/dossiers/{dossier['id']}/files"
    env = {
        "WAREHOUSE_RATE_ACCOUNT_UPLOADS": "1",
        "WAREHOUSE_UPLOAD_IDLE_SECONDS": "2",
        "WAREHOUSE_UPLOAD_RATE_GRACE_SECONDS": "2",
        "WAREHOUSE_UPLOAD_MIN_BYTES_PER_SECOND": "1000",
        "WAREHOUSE_UPLOAD_PART_BYTES": str(5 * MiB),
    }
    with LiveServer(**env) as server:
        # Two gigabytes announced, nothing sent: refused at once, and no volume is counted for it.
        status, took = await raw_request(server.url, request_head("POST", path, token, 2 * 1024**3), [])
        assert status == 413 and took < 2
        # One byte every half second.
        crawl = [b"%PDF-1.4\n"] + [b"x"] * 40
        status, took = await raw_request(server.url, request_head("POST", path, token, 100_000), crawl, pause=0.5)
        assert status == 408 and took < 8, (status, took)
        # A part that announces 5 MiB and stops after a few bytes.
        data = b"%PDF-1.4\n" + os.urandom(6 * MiB)
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            session = await start(http, token, dossier["id"], data)
            part_path = f"/api/v1/uploads/{session['id']}/parts/1"
            status, took = await raw_request(server.url, request_head("PUT", part_path, token, 5 * MiB), [b"x" * 100])
            assert status == 408 and took < 8, (status, took)
            # The slot (one per account here) is free again, and no volume was counted for the lies.
            r = await http.post(
                path,
                content=scanned_pdf(pages=1, dpi=100, seed=154),
                headers={**auth(token), "Content-Type": "application/pdf", "X-File-Kind": "component"},
            )
            assert r.status_code == 201, r.text


async def test_a_file_larger_than_a_slice_of_the_volume_budget_is_taken_at_its_pace(api: Api, tree: Subtree) -> None:
    """300 MB a minute runs 10 s (50 MiB) ahead at most: a 60 MiB file is taken, not refused for ever."""

    strict = api.settings.model_copy(update={"rate_account_upload_mb_per_minute": 300})
    _, token = await api.account("operator", tree.commune(1))
    dossier = await api.dossier(token)
    data = b"%PDF-1.4\n" + os.urandom(60 * MiB)
    async with make_client(strict) as client:
        r = await client.post(
            f"/api/v1/dossiers/{dossier['id']}/files",
            content=data,
            headers={**auth(token), "Content-Type": "application/pdf", "X-File-Kind": "component"},
        )
        assert r.status_code == 201, r.text
        # The next one waits its turn with a Retry-After, as long as the budget is behind.
        r = await client.post(
            f"/api/v1/dossiers/{dossier['id']}/files",
            content=data[: 10 * MiB],
            headers={**auth(token), "Content-Type": "application/pdf", "X-File-Kind": "component"},
        )
        assert r.status_code in (201, 429)
        if r.status_code == 429:
            assert int(r.headers["retry-after"]) <= 12


async def test_requests_refused_for_one_account_do_not_use_up_its_unit(api: Api, tree: Subtree) -> None:

    strict = api.settings.model_copy(update={"rate_account_rps": 3, "rate_unit_rps": 6})
    _, greedy = await api.account("operator", tree.commune(1))
    _, calm = await api.account("operator", tree.commune(1))
    async with make_client(strict) as client:
        greedy_codes = [(await client.get("/api/v1/me", headers=auth(greedy))).status_code for _ in range(20)]
        assert greedy_codes.count(200) == 3
        calm_codes = [(await client.get("/api/v1/me", headers=auth(calm))).status_code for _ in range(3)]
    assert calm_codes == [200, 200, 200]


async def test_the_progress_report_shows_a_commune_only_its_own_units(api: Api, tree: Subtree) -> None:
    import csv
    import io

    for role in ("viewer", "operator"):
        _, token = await api.account(role, tree.commune(1))
        r = await api.client.get("/api/v1/reports/progress", headers=auth(token))
        assert r.status_code == 200
        assert {row["unit_code"] for row in r.json()["units"]} == {tree.commune(1)}
        r = await api.client.get("/api/v1/reports/progress", headers={**auth(token), "Accept": "text/csv"})
        rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))[1:]
        codes = {row[0] for row in rows if row and row[0]}  # the level's total lines have no code
        assert codes <= {tree.commune(1)}, codes
        assert all("(1 đơn vị)" in row[1] for row in rows if row and not row[0]), "totals of its own unit only"
        r = await api.client.get(f"/api/v1/reports/progress?parent={tree.commune(2)}", headers=auth(token))
        assert r.status_code == 404


async def test_a_commune_cannot_take_another_units_dossier_codes(api: Api, tree: Subtree) -> None:
    _, a = await api.account("operator", tree.commune(1))
    _, b = await api.account("operator", tree.commune(2))
    theirs = f"{tree.commune(2)}-230415-0001"
    body = {
        "code": theirs,
        "procedure_code": "1.002891",
        "subject": {"name": "Hoàng Văn Sơn", "id_kind": "cccd", "id_number": "020190000009"},
    }
    r = await api.client.post("/api/v1/dossiers", json=body, headers=auth(a))
    assert (r.status_code, r.json()["code"]) == (422, "dossier_code_of_another_unit")
    r = await api.client.post("/api/v1/dossiers", json=body, headers=auth(b))
    assert r.status_code == 201 and r.json()["code"] == theirs
    # A taken code of another unit is refused for its prefix alone: it does not tell that it exists.
    r = await api.client.post("/api/v1/dossiers", json=body, headers=auth(a))
    assert (r.status_code, r.json()["code"]) == (422, "dossier_code_of_another_unit")


def median_seconds(samples: list[float]) -> float:
    import statistics

    return statistics.median(samples)


async def test_sign_in_takes_as_long_for_an_unknown_login_as_for_a_known_one(api: Api, tree: Subtree) -> None:
    import time

    login, _ = await api.account("operator", tree.commune(1))
    one_time, _ = await api.account("operator", tree.commune(1), change_required=True)
    await api.db.pool.execute(
        "UPDATE accounts SET password_hash = 'sha256$' || repeat('0', 64) WHERE login = $1", one_time
    )
    costs: dict[str, list[float]] = {"known": [], "one_time": [], "unknown": []}
    for _ in range(api.settings.login_free_attempts - 1):  # short of the lock
        for kind, who in (("known", login), ("one_time", one_time), ("unknown", "khong-ai-ca")):
            started = time.perf_counter()
            r = await api.client.post("/api/v1/auth/login", json={"login": who, "password": "sai-mat-khau"})
            costs[kind].append(time.perf_counter() - started)
            assert r.status_code == 401
    known, unknown, once = (median_seconds(costs[k]) for k in ("known", "unknown", "one_time"))
    assert 0.5 < unknown / known < 2 and 0.5 < once / known < 2, costs


async def test_a_stranger_cannot_lock_a_user_out_and_addresses_are_limited(api: Api, tree: Subtree) -> None:
    from tests.factories import PASSWORD

    behind_proxy = api.settings.model_copy(update={"trusted_proxies": ["testclient"], "login_address_per_minute": 30})
    login, _ = await api.account("operator", tree.commune(1))

    def at(address: str) -> dict[str, str]:
        return {"X-Forwarded-For": address}

    async with make_client(behind_proxy) as client:
        stranger = [
            await client.post(
                "/api/v1/auth/login", json={"login": login, "password": "doan-thu"}, headers=at("10.9.9.9")
            )
            for _ in range(8)
        ]
        assert stranger[0].status_code == 401
        assert (stranger[-1].status_code, stranger[-1].json()["code"]) == (429, "account_locked")
        assert "retry-after" in stranger[-1].headers
        # Even the right password is refused from the stranger's address while it is locked ...
        r = await client.post("/api/v1/auth/login", json={"login": login, "password": PASSWORD}, headers=at("10.9.9.9"))
        assert r.status_code == 429
        # ... and the rightful user, elsewhere, signs in.
        r = await client.post("/api/v1/auth/login", json={"login": login, "password": PASSWORD}, headers=at("10.1.1.1"))
        assert r.status_code == 200, r.text
        # One address gets a bounded number of sign-ins a minute, whatever logins it tries.
        codes = [
            (
                await client.post(
                    "/api/v1/auth/login", json={"login": f"ai-do-{i}", "password": "x"}, headers=at("10.7.7.7")
                )
            ).status_code
            for i in range(35)
        ]
        assert codes[:30] == [401] * 30 and codes[30:] == [429] * 5


async def test_a_reset_ends_old_tokens_and_api_keys_and_a_change_ends_old_tokens(api: Api, tree: Subtree) -> None:
    from tests.factories import PASSWORD

    admin = await api.admin()
    login, token = await api.account("operator", tree.commune(1))
    me = (await api.client.get("/api/v1/me", headers=auth(token))).json()
    r = await api.client.post("/api/v1/api-keys", json={"label": "máy quét"}, headers=auth(token))
    assert r.status_code == 201, r.text
    key = r.json()["key"]
    assert (await api.client.get("/api/v1/me", headers={"X-API-Key": key})).status_code == 200

    r = await api.client.post(f"/api/v1/accounts/{me['id']}/reset-password", headers=auth(admin))
    assert r.status_code == 200, r.text
    one_time = r.json()["password"]
    assert (await api.client.get("/api/v1/me", headers=auth(token))).status_code == 401
    assert (await api.client.get("/api/v1/me", headers={"X-API-Key": key})).status_code == 401
    first = await api.login(login, one_time)
    r = await api.client.post(
        "/api/v1/me/password",
        json={"current_password": one_time, "new_password": "mat-khau-moi-2026"},
        headers=auth(first),
    )
    assert r.status_code == 200, r.text
    fresh = r.json()["access_token"]
    assert (await api.client.get("/api/v1/me", headers=auth(first))).status_code == 401
    assert (await api.client.get("/api/v1/me", headers=auth(fresh))).status_code == 200
    assert (await api.client.get("/api/v1/me", headers=auth(token))).status_code == 401
    assert (await api.client.get("/api/v1/me", headers={"X-API-Key": key})).status_code == 401
    assert PASSWORD != "mat-khau-moi-2026"


async def test_password_checks_are_bounded_per_process() -> None:
    import asyncio

    from warehouse.security import PasswordChecksBusy, Passwords

    passwords = Passwords(time_cost=2, memory_kib=19456, parallelism=1, concurrency=1, queue=2)
    stored = passwords.hash("mat-khau-dung")
    results = await asyncio.gather(
        *(passwords.verify_async(stored, "mat-khau-dung") for _ in range(6)), return_exceptions=True
    )
    assert results.count(True) == 3
    assert sum(isinstance(r, PasswordChecksBusy) for r in results) == 3


async def test_a_sign_in_flood_neither_grows_the_api_nor_stalls_it(api: Api) -> None:
    import asyncio
    import time

    from tests.factories import LiveServer

    with LiveServer() as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            await http.get("/health/live")
            baseline = PeakRss(server.proc.pid).now()
            statuses: list[int] = []
            health: list[float] = []
            stop = False

            async def flood(i: int) -> None:
                for j in range(6):
                    r = await http.post("/api/v1/auth/login", json={"login": f"lu-{i}-{j}", "password": "sai"})
                    statuses.append(r.status_code)

            async def watch() -> None:
                while not stop:
                    started = time.perf_counter()
                    await http.get("/health/live")
                    health.append(time.perf_counter() - started)
                    await asyncio.sleep(0.05)

            with PeakRss(server.proc.pid) as rss:
                watcher = asyncio.create_task(watch())
                await asyncio.gather(*(flood(i) for i in range(24)))
                stop = True
                await watcher
    assert set(statuses) <= {401, 503}, set(statuses)
    grown = (rss.peak - baseline) / MiB
    assert grown < 100, f"the API grew by {grown:.0f} MiB"
    # A stalled API answers in seconds; on two busy cores a scheduling hiccup alone can cost half a second.
    assert max(health) < 1.0, f"/health/live took up to {max(health):.2f} s"


def raw_get(port: int, path: str, headers: str = "") -> tuple[int, bytes]:
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{headers}\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


async def test_metrics_answer_only_at_their_own_path_and_odd_paths_are_refused(api: Api, tree: Subtree) -> None:
    from tests.factories import LiveServer

    _, token = await api.account("viewer", tree.commune(1))
    with LiveServer(WAREHOUSE_METRICS_TOKEN="scrape-secret") as server:
        bearer = "Authorization: Bearer scrape-secret\r\n"
        assert raw_get(server.port, "/metrics", bearer)[0] == 200
        assert raw_get(server.port, "/metrics")[0] == 404, "the scrape needs its token when one is set"
        assert raw_get(server.port, "/metrics", f"Authorization: Bearer {token}\r\n")[0] == 404
        for odd in ("/metrics/", "//metrics", "/metrics/../api/v1/me", "/api/v1//me", "/api/v1/./me", "/x/../metrics"):
            status, _ = raw_get(server.port, odd, bearer)
            assert status == 404, odd
    with LiveServer() as server:
        assert raw_get(server.port, "/metrics")[0] == 200
        assert raw_get(server.port, "/metrics/")[0] == 404


async def test_a_unit_administrator_cannot_raise_rate_limits(api: Api, tree: Subtree) -> None:

    _, unit_admin = await api.account("unit_admin", tree.district)
    _, operator = await api.account("operator", tree.commune(1))
    me = (await api.client.get("/api/v1/me", headers=auth(unit_admin))).json()
    them = (await api.client.get("/api/v1/me", headers=auth(operator))).json()
    raised = {"limits": {"requests_per_second": 500_000}}  # above every default, the suite's included
    r = await api.client.patch(f"/api/v1/accounts/{me['id']}", json=raised, headers=auth(unit_admin))
    assert r.status_code == 403
    r = await api.client.patch(f"/api/v1/accounts/{them['id']}", json=raised, headers=auth(unit_admin))
    assert r.status_code == 403
    r = await api.client.patch(
        f"/api/v1/accounts/{them['id']}", json={"limits": {"requests_per_second": 5}}, headers=auth(unit_admin)
    )
    assert r.status_code == 200 and r.json()["limits"]["requests_per_second"] == 5, "lowering is allowed"
    r = await api.client.patch(f"/api/v1/accounts/{them['id']}", json=raised, headers=auth(await api.admin()))
    assert r.status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/v1/dossiers?q=ab%00cd", None),
        ("GET", "/api/v1/units/000.00.%00.HXX", None),
        ("GET", "/api/v1/results?subject_id=0201%0090", None),
        ("GET", "/api/v1/accounts/99999999999999999999999", None),
        ("GET", "/api/v1/accounts/9223372036854775808", None),
        ("PUT", "/api/v1/targets/000.00.21.HXX/2026", {"declared_total": 2**40, "target_rate": 0.5}),
        (
            "POST",
            "/api/v1/dossiers",
            {
                "procedure_code": "1.002891",
                "subject": {"name": "A\u0000B", "id_kind": "cccd", "id_number": "020190000001"},
            },
        ),
        ("POST", "/api/v1/dossiers", "[" * 1000 + "]" * 1000),
        ("POST", "/api/v1/uploads", {"dossier_id": "{dossier}", "filename": 12, "size": 10, "sha256": [], "kind": {}}),
        (
            "POST",
            "/api/v1/uploads",
            {"dossier_id": "{dossier}", "filename": ["a"], "size": 10, "sha256": "a" * 64, "kind": 3},
        ),
        ("POST", "/api/v1/uploads", {"size": 2**70}),
        ("PATCH", "/api/v1/accounts/1", {"limits": {"requests_per_second": 2**70}}),
    ],
)
async def test_bad_values_get_a_4xx_problem_never_a_500(
    api: Api, method: str, path: str, body: Any, tree: Subtree
) -> None:
    admin = await api.admin()
    kwargs: dict[str, Any] = {"headers": {**auth(admin), "Content-Type": "application/json"}}
    if body is not None:
        import json

        if isinstance(body, dict) and body.get("dossier_id") == "{dossier}":
            body = {**body, "dossier_id": (await api.dossier(admin, unit_code=tree.commune(1)))["id"]}
        kwargs["content"] = body if isinstance(body, str) else json.dumps(body)
    r = await api.client.request(method, path, **kwargs)
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] and r.json()["detail"]


async def test_the_api_connects_as_a_role_that_cannot_rewrite_the_audit_trail(api: Api) -> None:
    import asyncpg

    from storage import app_database_url

    await api.client.get("/api/v1/me", headers=auth(await api.admin()))
    # The API's own pool is connected: as which role?
    users = {
        r["usename"]
        for r in await api.db.pool.fetch(
            "SELECT usename FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND usename IS NOT NULL"
        )
    }
    assert "warehouse_app" in users
    conn = await asyncpg.connect(app_database_url(api.settings))
    who = await conn.fetchrow(
        "SELECT current_user AS name, rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = current_user"
    )
    assert who["name"] == "warehouse_app" and not who["rolsuper"] and not who["rolcreaterole"]
    owned = await conn.fetchval(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relowner = (SELECT oid FROM pg_roles WHERE rolname = current_user)"
    )
    assert owned == 0, "the API's role owns nothing"
    try:
        for statement in (
            "UPDATE audit_events SET action = 'x'",
            "DELETE FROM audit_events",
            "TRUNCATE audit_events",
            "ALTER TABLE audit_events DISABLE TRIGGER ALL",
            "SET session_replication_role = replica",
            "DROP TRIGGER audit_events_no_update ON audit_events",
            "CREATE TABLE squatter (x int)",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(statement)
        assert await conn.fetchval("SELECT count(*) FROM audit_events") > 0, "it reads the trail"
    finally:
        await conn.close()


async def test_a_body_over_a_mebibyte_with_an_idempotency_key_is_refused_whole(api: Api, tree: Subtree) -> None:
    import json

    _, token = await api.account("operator", tree.commune(1))
    body = {
        "procedure_code": "1.002891",
        "subject": {"name": "Hà Văn Dài", "id_kind": "cccd", "id_number": "020190000111"},
        "title": "x" * (1024 * 1024 + 10),
    }
    headers = {**auth(token), "Idempotency-Key": "mot-lan-thoi", "Content-Type": "application/json"}
    r = await api.client.post("/api/v1/dossiers", content=json.dumps(body), headers=headers)
    assert r.status_code == 413, r.text[:300]
    # Nothing was made or remembered under that key: a proper request with it goes through.
    del body["title"]
    r = await api.client.post("/api/v1/dossiers", content=json.dumps(body), headers=headers)
    assert r.status_code == 201, r.text[:300]


async def test_a_request_cut_off_midway_does_not_spend_its_idempotency_key(api: Api, tree: Subtree) -> None:
    import asyncio
    import json

    from tests.factories import LiveServer

    _, token = await api.account("operator", tree.commune(1))
    body = json.dumps(
        {
            "procedure_code": "1.002891",
            "subject": {"name": "Mã Văn Đứt", "id_kind": "cccd", "id_number": "020190000112"},
        }
    ).encode()
    with LiveServer() as server:
        _, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(
            f"POST /api/v1/dossiers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nIdempotency-Key: dut-giua-chung\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body[: len(body) // 2]
        )
        await writer.drain()
        await asyncio.sleep(0.5)
        writer.close()  # the link drops
        await asyncio.sleep(0.5)
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            r = await http.post(
                "/api/v1/dossiers",
                content=body,
                headers={**auth(token), "Content-Type": "application/json", "Idempotency-Key": "dut-giua-chung"},
            )
    assert r.status_code == 201, r.text


async def test_trusted_proxies_may_be_networks() -> None:
    """A proxy on a container network has no fixed address: WAREHOUSE_TRUSTED_PROXIES takes networks."""
    from warehouse.api.session import trusted as _trusted

    proxies = ["172.16.0.0/12", "10.1.2.3", "not-an-address/99"]
    assert _trusted("172.18.0.5", proxies) and _trusted("10.1.2.3", proxies)
    assert not _trusted("10.1.2.4", proxies) and not _trusted("8.8.8.8", proxies)
    assert not _trusted("unknown", proxies) and not _trusted("testclient", [])
