"""What the workers export for Prometheus (``WAREHOUSE_WORKER_METRICS_PORT``): job durations by outcome,
verdicts, findings, OCR'd pages and push deliveries with their lag. The API exports requests and the queues' depth."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec

from prometheus_client import Counter, Histogram, start_http_server

from storage.inspection import InspectionRecord

JOB_SECONDS = Histogram(
    "warehouse_job_seconds",
    "Time one job took, by job and outcome",
    ["job", "outcome"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)
VERDICTS = Counter("warehouse_verdicts_total", "Files judged against the scan standard, by verdict", ["verdict"])
FINDINGS = Counter("warehouse_findings_total", "Findings on judged files, by code and severity", ["code", "severity"])
OCR_PAGES = Counter("warehouse_ocr_pages_total", "Pages OCR'd, by outcome", ["outcome"])
DELIVERIES = Counter(
    "warehouse_deliveries_total", "Push deliveries tried, by outcome (ok, gone, receiver, delivery)", ["outcome"]
)
DELIVERY_LAG = Histogram(
    "warehouse_delivery_lag_seconds",
    "From a change's commit to its delivery being taken by the receiver",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 30, 60, 300, 3600, 86400),
)


P = ParamSpec("P")
Job = Callable[P, Coroutine[Any, Any, str]]


def timed(job: str) -> Callable[[Job[P]], Job[P]]:
    """Time a job; its outcome is the first word of what it returns ("ready: ok" -> ready), or the
    exception's class ("Retry") when it raises."""

    def wrap(fn: Job[P]) -> Job[P]:
        @functools.wraps(fn)
        async def run(*args: P.args, **kwargs: P.kwargs) -> str:
            started = time.monotonic()
            outcome = "error"
            try:
                result = await fn(*args, **kwargs)
                outcome = result.split(":", 1)[0]
                return result
            except BaseException as exc:
                outcome = type(exc).__name__
                raise
            finally:
                JOB_SECONDS.labels(job, outcome).observe(time.monotonic() - started)

        return run

    return wrap


def record_verdict(details: InspectionRecord, state: str) -> None:
    VERDICTS.labels(details.verdict or state).inc()
    for f in details.findings:
        FINDINGS.labels(f.code, f.severity).inc()


def serve(port: int, host: str) -> None:
    """Expose this process's metrics on ``host:port`` (a thread; nothing when port is 0)."""
    if port:
        start_http_server(port, addr=host)
