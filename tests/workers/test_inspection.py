"""The worker inspects each file in a limited child: bad files are rejected with reasons, it lives on."""

from __future__ import annotations

import time

import pytest

from loadtests.pdfgen import scanned_pdf
from tests.factories import Api, Subtree
from tests.pdfs import bomb_pdf, cyclic_pdf, encrypted_pdf, slow_pdf, text_pdf, truncated_pdf

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_hostile_and_broken_pdfs_are_rejected_with_reasons_and_the_worker_lives_on(
    api: Api, tree: Subtree
) -> None:
    _, token = await api.account("operator", tree.commune(1))
    dossier = await api.dossier(token)
    cases = {
        "pdf_truncated": truncated_pdf(),
        "pdf_encrypted": encrypted_pdf(),
        "pdf_unreadable": cyclic_pdf(),
        "pdf_too_complex": bomb_pdf(),
    }
    ids = {}
    for code, data in cases.items():
        r = await api.upload(token, dossier["id"], data, filename=f"{code}.pdf")
        assert r.status_code == 201, r.text
        ids[code] = r.json()["id"]
    good = (await api.upload(token, dossier["id"], scanned_pdf(pages=2, dpi=200, seed=11))).json()["id"]

    started = time.monotonic()
    await api.run_worker()
    assert time.monotonic() - started < api.settings.inspect_timeout_seconds

    for code, file_id in ids.items():
        f = await api.file(token, file_id)
        assert f["state"] == "rejected", (code, f)
        assert f["reason_code"] == code
        assert f["reason"], "a rejection carries a sentence the operator can act on"
        assert f["inspection"]["reason_vi"]
    ready = await api.file(token, good)
    assert ready["state"] == "ready"
    assert ready["pages"] == 2


async def test_text_layer_is_recorded_and_searchable(api: Api, tree: Subtree) -> None:
    _, token = await api.account("operator", tree.commune(1))
    dossier = await api.dossier(token)
    file_id = (await api.upload(token, dossier["id"], text_pdf("Quyet dinh cap phep xay dung so 4711"))).json()["id"]
    await api.run_worker()
    f = await api.file(token, file_id)
    assert f["state"] == "ready"
    assert f["inspection"]["text_layer"] is True
    r = await api.client.get(
        "/api/v1/dossiers", params={"q": "phep xay dung so 4711"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert [d["id"] for d in r.json()["items"]] == [dossier["id"]]


async def test_a_file_inspected_twice_keeps_its_first_verdict(api: Api, tree: Subtree) -> None:
    _, token = await api.account("operator", tree.commune(1))
    dossier = await api.dossier(token)
    file_id = (await api.upload(token, dossier["id"], text_pdf())).json()["id"]
    await api.run_worker()
    first = await api.file(token, file_id)
    # A duplicate delivery of the same job (a retry after a lost acknowledgement) changes nothing.
    from storage import Queue

    queue = Queue.from_url(api.settings.redis_url)
    assert await queue.enqueue_inspection(file_id)
    await queue.close()
    assert await api.run_worker() == 1
    assert await api.file(token, file_id) == first


async def test_a_time_limit_rejects_a_file_that_takes_too_long(api: Api, tree: Subtree) -> None:
    slow = api.settings.model_copy(update={"inspect_timeout_seconds": 0.5})
    _, token = await api.account("operator", tree.commune(1))
    dossier = await api.dossier(token)
    file_id = (await api.upload(token, dossier["id"], slow_pdf())).json()["id"]  # seconds of parsing
    started = time.monotonic()
    await api.run_worker(slow)
    assert time.monotonic() - started < 3
    f = await api.file(token, file_id)
    assert (f["state"], f["reason_code"]) == ("rejected", "pdf_inspection_timeout")


async def test_upload_lands_with_redis_down_and_is_inspected_when_it_returns(api: Api, tree: Subtree) -> None:
    from storage import Queue, drain_safely
    from tests.conftest import make_client
    from tests.factories import auth, free_port

    no_redis = api.settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    _, token = await api.account("operator", tree.commune(1))
    dossier = await api.dossier(token)
    async with make_client(no_redis) as client:
        r = await client.post(
            f"/api/v1/dossiers/{dossier['id']}/files",
            content=text_pdf(),
            headers={**auth(token), "Content-Type": "application/pdf", "X-File-Kind": "result"},
        )
    assert r.status_code == 201, r.text
    file_id = r.json()["id"]

    dead = Queue.from_url(no_redis.redis_url)
    assert await drain_safely(api.db, dead) == 0  # Redis still down: the file waits in the outbox
    await dead.close()
    assert (await api.file(token, file_id))["state"] == "processing"

    await api.run_worker()  # Redis is back
    assert (await api.file(token, file_id))["state"] == "ready"


async def test_a_lost_job_is_queued_again_by_the_sweeper(api: Api, tree: Subtree) -> None:
    from storage import Queue
    from workers.inspection import requeue_stuck

    _, token = await api.account("operator", tree.commune(1))
    dossier = await api.dossier(token)
    file_id = (await api.upload(token, dossier["id"], text_pdf())).json()["id"]
    # As if a worker had taken the job and died: queued long ago, never finished, gone from Redis.
    await api.db.pool.execute("UPDATE files SET queued_at = now() - interval '1 hour' WHERE id = $1::uuid", file_id)
    queue = Queue.from_url(api.settings.redis_url)
    try:
        ctx = {"settings": api.settings, "db": api.db, "queue": queue}
        assert await requeue_stuck(ctx) == 1
    finally:
        await queue.close()
    await api.run_worker()
    assert (await api.file(token, file_id))["state"] == "ready"


async def test_claims_and_verdicts_go_in_batches_and_a_refused_verdict_fails_alone(api: Api, tree: Subtree) -> None:
    import asyncio
    from uuid import UUID

    from storage import Files, Inspection, Verdict
    from storage.inspection import InspectionRecord
    from storage.legal import Legal, NewResultCode
    from workers.inspection import batches

    _, token = await api.account("operator", tree.commune(1))
    dossier = await api.dossier(token)
    ids = [
        UUID((await api.upload(token, dossier["id"], text_pdf(f"Giay chung nhan so {n:04d}"))).json()["id"])
        for n in range(4)
    ]
    # Long enough that only the batch's size sends it: the four claims must go as one statement.
    settings = api.settings.model_copy(update={"inspect_batch_files": 4, "inspect_batch_ms": 5000})
    files = Files(api.db.pool)
    batch = batches(files, Legal(api.db.pool), settings)
    claimed = await asyncio.gather(*(batch["claims"](i) for i in ids))
    assert batch["claims"].calls == 1
    assert [f.id for f, _ in claimed if f is not None] == ids
    assert all(facts is not None and facts.dossier_code == dossier["code"] for _, facts in claimed)

    def verdict(n: int, code: str | None) -> Verdict:
        f = claimed[n][0]
        assert f is not None
        result = Inspection("ready", 1, InspectionRecord(verdict="ready"), f"text {n}", page_texts=[f"text {n}"])
        given = NewResultCode(code, 10**12 + n, None, "", "Giấy chứng nhận", None) if code else None
        return Verdict(f, result, [], given)

    # The third verdict carries a result code Postgres refuses (not of the code's form): the batch is
    # refused whole, then sent file by file, so only that file fails.
    answers = await asyncio.gather(
        *(batch["verdicts"](verdict(n, "KSH.2026.BAD CODE" if n == 2 else None)) for n in range(4)),
        return_exceptions=True,
    )
    assert answers[0] is True and answers[1] is True and answers[3] is True
    assert isinstance(answers[2], Exception)
    assert batch["verdicts"].calls == 1 + 4
    states = [(await api.file(token, str(i)))["state"] for i in ids]
    assert states == ["ready", "ready", "processing", "ready"]
    # A verdict recorded once is not recorded again (a repeated job): answered False.
    assert await batch["verdicts"](verdict(0, None)) is False


async def test_a_job_lost_with_a_killed_worker_is_run_again_not_refused_as_a_duplicate(api: Api, tree: Subtree) -> None:
    import asyncio

    import redis.asyncio as aioredis

    from storage import Queue, drain_safely
    from storage.queue import inspection_job_id
    from workers.inspection import requeue_stuck

    _, token = await api.account("operator", tree.commune(1))
    dossier = await api.dossier(token)
    file_id = (await api.upload(token, dossier["id"], text_pdf())).json()["id"]
    queue = Queue.from_url(api.settings.redis_url)
    redis = aioredis.from_url(api.settings.redis_url)
    try:
        assert await drain_safely(api.db, queue) >= 1
        # As a worker killed mid-job leaves it: the job still queued and marked running (arq keeps that
        # mark for as long as the longest job a worker runs may take: hours), the file 'inspecting'.
        job_id = inspection_job_id(file_id)
        await redis.set(f"arq:in-progress:{job_id}", b"1", ex=6 * 3600)
        await api.db.pool.execute(
            "UPDATE files SET stage = 'inspecting', attempts = 1, queued_at = now() - interval '1 hour' "
            "WHERE id = $1::uuid",
            file_id,
        )
        ctx = {"settings": api.settings, "db": api.db, "queue": queue}
        assert await requeue_stuck(ctx) == 1
        assert not await redis.exists(f"arq:in-progress:{job_id}")
    finally:
        await queue.close()
        await redis.aclose()
    await asyncio.wait_for(api.run_worker(), timeout=60)
    assert (await api.file(token, file_id))["state"] == "ready"
