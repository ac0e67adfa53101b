"""`warehouse up` (what `make run` ends in) stops everything it started, on Ctrl-C or on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from storage import Settings
from tests.factories import free_port


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (read from /proc, as ps would)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("stop", ["sigterm", "ctrl_c_twice"])
def test_a_stop_ends_the_api_and_workers_that_up_started_without_a_traceback(
    settings: Settings, prepared: object, tmp_path: Path, stop: str
) -> None:
    port = free_port()
    base = settings.database_url.rsplit("/", 1)[0]
    env = {
        **os.environ,
        "WAREHOUSE_DATABASE_URL": f"{base}/warehouse_test_up",
        "WAREHOUSE_REDIS_URL": settings.redis_url.rsplit("/", 1)[0] + "/12",  # not the tests' queue
        "WAREHOUSE_S3_BUCKET": "warehouse-test-up",
        "WAREHOUSE_PORT": str(port),
        "WAREHOUSE_ADMIN_PASSWORD": "Kho-so-hoa-2026",
    }
    log = tmp_path / "up.log"
    with log.open("w") as out:
        up = subprocess.Popen([sys.executable, "-m", "warehouse", "up"], env=env, stdout=out, stderr=subprocess.STDOUT)
    started: set[int] = set()
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert up.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the API did not become ready"
            time.sleep(0.5)
        started = descendants(up.pid)
        assert len(started) >= 3, "the API and the inspection and OCR workers"

        if stop == "sigterm":
            up.send_signal(signal.SIGTERM)
        else:  # an impatient operator: Ctrl-C, and Ctrl-C again while it stops
            up.send_signal(signal.SIGINT)
            time.sleep(0.5)
            up.send_signal(signal.SIGINT)
        assert up.wait(timeout=120) == 0, log.read_text()
        assert "stopping" in log.read_text()
        assert "Traceback" not in log.read_text(), log.read_text()
        time.sleep(1)
        assert [pid for pid in started if alive(pid)] == [], log.read_text()
    finally:
        for pid in [up.pid, *started]:  # nothing of this test outlives it, whatever failed
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        up.wait()


def test_a_second_up_on_a_taken_port_says_so_instead_of_serving_beside_the_first() -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "warehouse", "up"],
            env={**os.environ, "WAREHOUSE_PORT": str(port), "WAREHOUSE_HOST": "127.0.0.1"},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1
    assert f"something already answers on 127.0.0.1:{port}" in done.stderr and "WAREHOUSE_PORT" in done.stderr
