"""Run functions in long-lived child processes with a time limit and a memory limit.

A hostile file can make a parser loop, recurse or allocate without end; in a child, that costs the
child alone. The worker stays alive and answers with a verdict.

The children are a pebble process pool: each sets its memory limit once when it starts, a child that
runs past the time limit is killed and replaced, and every child is replaced after ``max_tasks`` jobs
so memory a parser fragmented is given back. Forking a fresh child per file cost more CPU (most of it
system time) than reading a typical scan.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import resource
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pebble import ProcessExpired, ProcessPool


@dataclass(frozen=True, slots=True)
class Outcome:
    status: Literal["ok", "timeout", "crashed"]
    value: Any = None
    detail: str = ""


def _limit_child(memory_bytes: int, niceness: int, idle: bool) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if niceness:
        os.nice(niceness)
    if idle and hasattr(os, "SCHED_IDLE"):
        # Run only when a core is otherwise idle (inherited by Tesseract): a niceness alone still took
        # a tenth of the CPU from the API under load.
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))


class Sandbox:
    """A pool of ``workers`` limited children. ``run`` is awaited from the worker's event loop."""

    def __init__(
        self,
        *,
        workers: int,
        memory_mb: int,
        max_tasks: int = 100,
        niceness: int = 0,
        idle: bool = False,
        preload: Sequence[str] = ("workers.pdfcheck", "pypdf"),
    ) -> None:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(list(preload))
        self._options: dict[str, Any] = {
            "max_workers": workers,
            "max_tasks": max_tasks,
            "initializer": _limit_child,
            "initargs": (memory_mb * 1024 * 1024, niceness, idle),
            "context": context,
        }
        self._pool = ProcessPool(**self._options)

    async def run(self, fn: Callable[..., Any], *args: Any, limit_seconds: float) -> Outcome:
        """Call ``fn(*args)`` in a child; the time limit counts from when a child starts on it."""
        try:
            future = self._pool.schedule(fn, args=args, timeout=limit_seconds)
        except RuntimeError:
            # The pool broke (a child could not start, say after the machine ran out of memory): make a
            # new one rather than failing every job after it.
            self._pool.stop()  # type: ignore[no-untyped-call]
            self._pool = ProcessPool(**self._options)
            future = self._pool.schedule(fn, args=args, timeout=limit_seconds)
        try:
            return Outcome("ok", value=await asyncio.wrap_future(future))
        except TimeoutError:
            return Outcome("timeout", detail=f"no answer within {limit_seconds:g}s")
        except ProcessExpired as exc:
            return Outcome("crashed", detail=f"child exited with code {exc.exitcode}")
        except MemoryError:
            return Outcome("crashed", detail="ran out of memory")
        except Exception as exc:  # whatever the parser raised, as a sentence
            return Outcome("crashed", detail=f"{type(exc).__name__}: {exc}"[:300])

    def close(self) -> None:
        """Stop the children (a job still running is abandoned; its file is inspected again later)."""
        self._pool.stop()  # type: ignore[no-untyped-call]
        self._pool.join(timeout=10)
