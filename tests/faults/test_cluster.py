"""The failover run in short form: a cluster of its own on this machine (two API processes, two workers,
SeaweedFS on three volume servers), uploads as the communes do while an API process, a worker and a
volume server are killed in turn and the volume server comes back with its old data; afterwards every
acknowledged upload is there once, inspected, with its bytes, and each failover window kept its budget."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.usefixtures("prepared")
def test_killing_an_api_process_a_worker_and_a_storage_node_loses_nothing() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "warehouse", "cluster", "failover", "--seconds", "12", "--operators", "3"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = run.stdout
    assert run.returncode == 0, out[-3000:] + run.stderr[-3000:]
    assert "failover: PASS" in out
    for what in ("kill api1", "kill worker1", "kill volume2", "start volume2"):
        assert f"failover: {what} at" in out, out
    acknowledged = int(out.split(" uploads acknowledged")[0].rsplit("failover: ", 1)[1])
    assert acknowledged >= 20, out
