"""What operators watch: /metrics carries requests, the pipeline's and queues' depth, and the workers'
job durations, verdicts and findings; `warehouse probe` answers container health checks."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest
from prometheus_client import REGISTRY

from loadtests.pdfgen import scanned_pdf
from storage import Files, Queue
from tests.factories import Api, LiveServer, Subtree, auth, free_port
from tests.pdfs import encrypted_pdf
from warehouse import metrics as gauges
from warehouse.metrics import refresh
from workers import metrics as worker_metrics

session_loop = pytest.mark.asyncio(loop_scope="session")


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@session_loop
async def test_metrics_show_the_pipeline_and_what_the_workers_judged(api: Api, tree: Subtree) -> None:
    _, token = await api.account("operator", tree.commune(1))
    dossier = await api.dossier(token)
    before_ready = sample("warehouse_verdicts_total", verdict="ready")
    before_rejected = sample("warehouse_verdicts_total", verdict="rejected")
    before_encrypted = sample("warehouse_findings_total", code="pdf_encrypted", severity="reject")
    before_jobs = sample("warehouse_job_seconds_count", job="inspect_file", outcome="ready")
    for data in (scanned_pdf(pages=1, seed=41), encrypted_pdf()):
        r = await api.upload(token, dossier["id"], data)
        assert r.status_code == 201, r.text

    queue = Queue.from_url(api.settings.redis_url)
    try:
        gauges.mark_stale()  # the scrape reads the pipeline when its last reading is old
        text = (await api.client.get("/metrics")).text
        queued = [line for line in text.splitlines() if line.startswith('warehouse_pipeline_files{stage="queued"}')]
        assert queued and float(queued[0].split()[-1]) >= 2, "files waiting for inspection are counted"
        waiting = float(queued[0].split()[-1])
        assert 'warehouse_queue_jobs{queue="' in text
        assert "warehouse_requests_total" in text and "warehouse_request_duration_seconds_bucket" in text

        await api.run_worker()
        await refresh(Files(api.db.pool), queue)
    finally:
        await queue.close()
    # (the worker also takes files other tests left waiting: at least ours are counted)
    assert sample("warehouse_verdicts_total", verdict="ready") >= before_ready + 1
    assert sample("warehouse_verdicts_total", verdict="rejected") >= before_rejected + 1
    assert sample("warehouse_findings_total", code="pdf_encrypted", severity="reject") >= before_encrypted + 1
    assert sample("warehouse_job_seconds_count", job="inspect_file", outcome="ready") >= before_jobs + 1
    assert sample("warehouse_pipeline_files", stage="queued") <= waiting - 2, "inspected files leave the count"

    # A worker serves the same over HTTP for Prometheus to scrape.
    port = free_port()
    worker_metrics.serve(port, "127.0.0.1")
    async with httpx.AsyncClient() as http:
        scraped = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    assert 'warehouse_verdicts_total{verdict="rejected"}' in scraped


def test_probe_answers_for_container_health_checks() -> None:
    probe = [sys.executable, "-m", "warehouse", "probe"]
    with LiveServer() as server:
        for kind in ("live", "ready"):
            done = subprocess.run([*probe, kind, "--url", server.url], capture_output=True, text=True)
            assert done.returncode == 0, done.stdout + done.stderr
    closed = f"http://127.0.0.1:{free_port()}"
    done = subprocess.run([*probe, "live", "--url", closed], capture_output=True, text=True)
    assert done.returncode == 1
    assert "did not answer" in done.stdout


@session_loop
async def test_request_metrics_name_the_route_and_the_real_status(api: Api, tree: Subtree) -> None:
    _, token = await api.account("viewer", tree.commune(1))
    await api.client.get("/api/v1/dossiers/00000000-0000-0000-0000-000000000000", headers=auth(token))
    refused = sample(
        "warehouse_requests_total", app_name="warehouse", method="GET", path="/api/v1/units", status_code="401"
    )
    r = await api.client.get("/api/v1/units", headers={"Authorization": "Bearer not-a-token"})
    assert (r.status_code, r.json()["code"]) == (401, "unauthenticated")
    text = (await api.client.get("/metrics")).text
    assert "00000000-0000-0000-0000-000000000000" not in text, "one series per route, not per record"
    labels = {"app_name": "warehouse", "method": "GET", "path": "/api/v1/units", "status_code": "401"}
    assert sample("warehouse_requests_total", **labels) == refused + 1, "a refused sign-in counts as 401, not 200"
