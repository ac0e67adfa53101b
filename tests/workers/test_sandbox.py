"""The inspection children: limits hold, a child that misbehaves is replaced, the rest keep working."""

from __future__ import annotations

import os
import time

import pytest

from workers.sandbox import Sandbox

pytestmark = pytest.mark.asyncio(loop_scope="session")


def pid() -> int:
    return os.getpid()


def sleep(seconds: float) -> str:
    time.sleep(seconds)
    return "woke"


def allocate(mib: int) -> int:
    return len(bytearray(mib * 1024 * 1024))


def die() -> None:
    os._exit(3)


def fail() -> None:
    raise ValueError("xref table is broken")


async def test_children_live_on_between_files_and_misbehaving_ones_are_replaced() -> None:
    sandbox = Sandbox(workers=1, memory_mb=256, max_tasks=50, preload=())
    try:
        first = await sandbox.run(pid, limit_seconds=30)
        again = await sandbox.run(pid, limit_seconds=30)
        assert first.status == again.status == "ok"
        assert first.value == again.value != os.getpid(), "one long-lived child, not a fork per file"

        timed_out = await sandbox.run(sleep, 30, limit_seconds=0.5)
        assert timed_out.status == "timeout"
        assert (await sandbox.run(allocate, 1024, limit_seconds=30)).status == "crashed"  # over the 256 MiB limit
        died = await sandbox.run(die, limit_seconds=30)
        assert (died.status, died.detail) == ("crashed", "child exited with code 3")
        failed = await sandbox.run(fail, limit_seconds=30)
        assert (failed.status, failed.detail) == ("crashed", "ValueError: xref table is broken")

        after = await sandbox.run(pid, limit_seconds=30)
        assert after.status == "ok" and after.value != first.value, "the timed-out child was replaced"
        assert (await sandbox.run(allocate, 16, limit_seconds=30)).value == 16 * 1024 * 1024
    finally:
        sandbox.close()
