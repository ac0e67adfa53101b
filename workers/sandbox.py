"""Run a function in a child process with a time limit and a memory limit.

A hostile file can make a parser loop, recurse or allocate without end; in a child, that costs the
child alone. The worker stays alive and answers with a verdict.
"""

from __future__ import annotations

import multiprocessing
import resource
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, Literal

_context = multiprocessing.get_context("forkserver")
_context.set_forkserver_preload(["workers.pdfcheck", "pypdf"])


@dataclass(frozen=True, slots=True)
class Outcome:
    status: Literal["ok", "timeout", "crashed"]
    value: Any = None
    detail: str = ""


def _child(conn: Connection, fn: Callable[..., Any], args: tuple[Any, ...], memory_bytes: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    try:
        result = fn(*args)
    except MemoryError:
        conn.send(("crashed", "ran out of memory"))
        return
    except BaseException as exc:
        conn.send(("crashed", f"{type(exc).__name__}: {exc}"[:300]))
        return
    conn.send(("ok", result))


def run_limited(fn: Callable[..., Any], *args: Any, timeout: float, memory_mb: int) -> Outcome:
    """Call ``fn(*args)`` in a fresh child process. Blocks; call it from a thread in async code."""
    receiver, sender = _context.Pipe(duplex=False)
    proc = _context.Process(target=_child, args=(sender, fn, args, memory_mb * 1024 * 1024), daemon=True)
    proc.start()
    sender.close()
    try:
        if receiver.poll(timeout):
            try:
                status, value = receiver.recv()
            except (EOFError, OSError):
                return Outcome("crashed", detail=f"child exited with code {proc.exitcode}")
            if status == "ok":
                return Outcome("ok", value=value)
            return Outcome("crashed", detail=str(value))
        if proc.is_alive():
            return Outcome("timeout", detail=f"no answer within {timeout:.0f}s")
        return Outcome("crashed", detail=f"child exited with code {proc.exitcode}")
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join(5)
        receiver.close()
        proc.close()
