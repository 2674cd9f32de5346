"""Gather concurrent requests into batches: each request waits on its own future in one asyncio
queue; a loop takes the first waiting request, then up to ``max_batch`` in all, waiting at most
``max_wait_ms`` for more, and runs them with one ``run_batch`` call in a worker thread, so the event
loop keeps accepting requests while the model runs. The next batch is gathered while this one runs,
so under load batches fill up by themselves and ``max_wait_ms`` matters only when traffic is light.

Each request gets its own result or its own error: when a batch fails, its requests are run again
one by one, so one bad request does not fail the others. Results are matched to requests by
position, and a batch that returns the wrong number of results fails every request in it rather
than answering one with another's result.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Busy(Exception):
    """The queue is full: the server answers 503 so the client can retry later."""


@dataclasses.dataclass(frozen=True)
class Served(Generic[R]):
    """One request's result, the size of the batch it ran in, and how long it waited for that batch."""

    result: R
    batch_size: int
    queued_s: float


@dataclasses.dataclass
class Waiting:
    item: Any
    future: asyncio.Future
    arrived: float


class MicroBatcher(Generic[T, R]):
    def __init__(self, run_batch: Callable[[list[T]], list[R]], max_batch: int = 8, max_wait_ms: float = 10.0,
                 max_queue: int = 1024):
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}.")
        if max_wait_ms < 0:
            raise ValueError(f"max_wait_ms cannot be negative, got {max_wait_ms}.")
        self.run_batch = run_batch
        self.max_batch, self.max_wait_s, self.max_queue = max_batch, max_wait_ms / 1000, max_queue
        self.requests = 0  # run, to a result or an error
        self.batches = 0  # run_batch calls, retries of a failed batch included
        self._queue: asyncio.Queue[Waiting] | None = None
        self._task: asyncio.Task | None = None
        self._worker: ThreadPoolExecutor | None = None
        self._taken: list[Waiting] = []  # taken from the queue, not yet answered

    def start(self) -> None:
        """Start the worker thread and the gathering loop; call from the event loop that will submit
        (the server's lifespan)."""
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="ragpress-serve")
        self._queue = asyncio.Queue(self.max_queue)
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def in_worker(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` on the worker thread, between batches: one thread runs all model work, so
        stages never run concurrently (tokenizers and models are not all thread-safe)."""
        if self._worker is None:
            raise RuntimeError("The batcher is not started: call start() from the server's event loop.")
        return await asyncio.get_running_loop().run_in_executor(self._worker, fn, *args)

    async def stop(self) -> None:
        """Stop gathering; requests still waiting or running get an error instead of hanging."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        stranded = self._taken + [self._queue.get_nowait() for _ in range(self._queue.qsize())] if self._queue else []
        for waiting in stranded:
            if not waiting.future.done():
                waiting.future.set_exception(RuntimeError("The server is shutting down; this request was not run."))
        if self._worker is not None:
            self._worker.shutdown(wait=False, cancel_futures=True)

    async def submit(self, item: T) -> Served[R]:
        """``item``'s result once its batch has run, or the error raised for it; :class:`Busy` when the queue is full."""
        if self._queue is None:
            raise RuntimeError("The batcher is not started: call start() from the server's event loop.")
        waiting = Waiting(item, asyncio.get_running_loop().create_future(), time.perf_counter())
        try:
            self._queue.put_nowait(waiting)
        except asyncio.QueueFull:
            raise Busy(f"{self.max_queue} requests are already waiting; retry shortly.") from None
        return await waiting.future

    async def _loop(self) -> None:
        while True:
            await self._gather()
            batch = self._taken = [w for w in self._taken if not w.future.done()]  # a client that left cancels its future
            if not batch:
                continue
            started = time.perf_counter()
            try:
                outcomes, calls = await self.in_worker(self._run_isolated, [w.item for w in batch])
            except Exception as error:  # the worker could not take it (shut down): answer every request with that
                outcomes, calls = [error] * len(batch), 0
            self._taken = []
            self.batches += calls
            size = len(batch) if calls == 1 else 1  # after a failed batch, each request ran alone
            for waiting, outcome in zip(batch, outcomes, strict=True):
                self.requests += 1
                if waiting.future.done():
                    continue
                if isinstance(outcome, BaseException):
                    waiting.future.set_exception(outcome)
                else:
                    waiting.future.set_result(Served(outcome, size, started - waiting.arrived))

    async def _gather(self) -> None:
        """Take the next batch from the queue into ``_taken`` (where :meth:`stop` finds it)."""
        batch = self._taken
        batch.append(await self._queue.get())
        deadline = time.perf_counter() + self.max_wait_s
        while len(batch) < self.max_batch:
            if not self._queue.empty():
                batch.append(self._queue.get_nowait())
                continue
            left = deadline - time.perf_counter()
            if left <= 0:
                break
            try:  # a get() cut short by the timeout leaves its item in the queue for the next batch
                batch.append(await asyncio.wait_for(self._queue.get(), left))
            except TimeoutError:
                break

    def _run_isolated(self, items: list[T]) -> tuple[list[R | Exception], int]:
        """Each item's result or error (run in the worker thread), and the number of run_batch calls made."""
        try:
            return self._checked(items), 1
        except Exception as error:
            if len(items) == 1:
                return [error], 1
        outcomes = []
        for item in items:  # one failed the batch: find which, and answer the others
            try:
                outcomes += self._checked([item])
            except Exception as error:
                outcomes.append(error)
        return outcomes, 1 + len(items)

    def _checked(self, items: list[T]) -> list[R]:
        results = self.run_batch(items)
        if len(results) != len(items):
            raise RuntimeError(f"run_batch returned {len(results)} results for {len(items)} requests; none can be matched.")
        return list(results)
