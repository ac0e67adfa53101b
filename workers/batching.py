"""Single calls gathered into one: the inspection jobs' claims and verdicts, one statement per batch.

Each inspection is its own job (its own retries, its own failure), but a worker with many jobs in
flight would send Postgres a statement per file for each step. A ``Batch`` takes the calls made within
a few milliseconds of each other and sends them as one call of a function on a list. When that call
fails, each item is sent again alone, so one item Postgres refuses fails alone and the others are
recorded. Nothing is held that is not also in the database: a worker that dies with calls pending
leaves its files ``inspecting``, and the sweep returns them to the queue as it always did.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Batch(Generic[K, V]):
    """``await batch(item)`` answers ``run([.., item, ..])[i]``: the calls made within ``wait_seconds``
    of the first one still waiting, up to ``size`` of them, go together."""

    def __init__(self, run: Callable[[list[K]], Awaitable[Sequence[V]]], *, size: int, wait_seconds: float) -> None:
        self._run = run
        self._size = max(1, size)
        self._wait = max(0.0, wait_seconds)
        self._pending: list[tuple[K, asyncio.Future[V]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._sending: set[asyncio.Task[None]] = set()
        self.calls = 0  # calls of ``run`` made, for the tests and the benchmark
        self.items = 0

    async def __call__(self, item: K) -> V:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[V] = loop.create_future()
        self._pending.append((item, future))
        if len(self._pending) >= self._size:
            self._send()
        elif self._timer is None:
            self._timer = loop.call_later(self._wait, self._send)
        return await future

    def _send(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._pending = self._pending, []
        if batch:
            task = asyncio.get_running_loop().create_task(self._deliver(batch))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _deliver(self, batch: list[tuple[K, asyncio.Future[V]]]) -> None:
        try:
            answers = await self._call([item for item, _ in batch])
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0][1], error=exc)
                return
            for item, future in batch:  # one at a time: what was refused fails alone
                try:
                    answer = (await self._call([item]))[0]
                except Exception as alone:
                    _settle(future, error=alone)
                else:
                    _settle(future, answer=answer)
            return
        for (_, future), answer in zip(batch, answers, strict=True):
            _settle(future, answer=answer)

    async def _call(self, items: list[K]) -> Sequence[V]:
        self.calls += 1
        self.items += len(items)
        answers = await self._run(items)
        if len(answers) != len(items):
            raise RuntimeError(f"{len(answers)} answers to {len(items)} items")
        return answers


def _settle(future: asyncio.Future[V], *, answer: V | None = None, error: BaseException | None = None) -> None:
    if future.done():  # its job was cancelled meanwhile (a timeout, the worker stopping)
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(answer)  # type: ignore[arg-type]
