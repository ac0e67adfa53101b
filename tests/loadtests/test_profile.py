"""`make profile`'s recorder: a running process sampled from outside, its flame graph written, and the
function it spends its time in named first."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from loadtests.profile import sampling, summarize

BUSY = """
import time

def busy_hashing():
    import hashlib
    data = b"x" * 65536
    end = time.monotonic() + 30
    while time.monotonic() < end:
        hashlib.sha256(data).digest()

busy_hashing()
"""


def test_a_busy_process_is_sampled_and_its_hot_function_named(tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", BUSY])
    try:
        time.sleep(0.5)
        with sampling(child.pid, tmp_path / "busy", rate=100):
            time.sleep(2.5)
    finally:
        child.kill()
        child.wait(10)
    assert (tmp_path / "busy.svg").read_text().lstrip().startswith("<?xml")
    lines = summarize(tmp_path / "busy.txt")
    assert lines[0].startswith("busy: ") and int(lines[0].split()[1]) >= 50, lines
    assert "busy_hashing" in lines[2], lines
