"""A few seconds of the load suite against a real API and worker: it provisions, runs and judges."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.factories import ADMIN_PASSWORD, LiveServer


@pytest.mark.usefixtures("prepared")
def test_the_load_suite_runs_and_gives_a_verdict(tmp_path: Path) -> None:
    with LiveServer(WAREHOUSE_ADMIN_PASSWORD=ADMIN_PASSWORD) as server:
        worker = subprocess.Popen(
            [sys.executable, "-m", "workers"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            run = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "loadtests.run",
                    "--shape",
                    "smoke",
                    "--duration",
                    "6",
                    "--host",
                    server.url,
                    "--admin-password",
                    ADMIN_PASSWORD,
                    "--report-dir",
                    str(tmp_path),
                    "--report-only",
                ],
                capture_output=True,
                text=True,
                timeout=300,
                env={**os.environ, "LOAD_PROGRESS_SECONDS": "2"},
            )
        finally:
            worker.terminate()
            worker.wait(60)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    summary = (tmp_path / "summary.md").read_text()
    assert "Verdict: " in summary.splitlines()[-1] or "Verdict: " in summary
    assert "POST /dossiers" in summary and "upload to ready" in summary
    assert "GET /feed" in summary and "feed lag" in summary  # the feed's consumer followed it
    intake = [line for line in summary.splitlines() if "intake" in line]
    assert any("intake per item" in line for line in intake), "the one-stop system pushed its returns"
    assert all("FAIL" not in line for line in intake if "errors in" in line), intake
    for name in ("locust_stats.csv", "locust_stats_history.csv", "report.html", "latency.png", "throughput.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert not (tmp_path / "accounts.json").exists(), "passwords do not stay in reports"
    assert "requests/s" in run.stdout.split("running smoke")[1].split("Verdict")[0], "progress while it runs"
