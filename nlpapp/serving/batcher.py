"""One model thread that gathers concurrent requests into batches.

Every model call of the server runs on this one thread: torch runs one batch at a time
best on a CPU, and a loaded model's active adapter is shared state. Requests (``Job``) wait
in one queue. When the thread is free it takes the oldest job and every other waiting job
with the same ``key`` (same model, adapter, task and options), up to ``max_batch`` inputs;
if that is less than a full batch, the oldest job is younger than ``max_wait_s`` and it
came within ``max_wait_s`` of the job before it (requests are arriving together), it waits
for more to arrive first. So a lone request runs at once, requests arriving together wait
at most ``max_wait_s`` to share a batch, and a busy server fills batches from what queued
while the last batch ran.

If a batch of several jobs fails, each job is run again alone, so one request's bad input
fails that request only. A job whose caller went away (``cancelled``) is dropped before it
runs; a running batch stops generating once all its jobs are cancelled (``runtime.cancel``).
Results go back to the caller's event loop through its future."""

from __future__ import annotations

import asyncio
import collections
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Sequence

from ..runtime import cancel

# Runs a batch: the items of several jobs, concatenated, to one result per item.
BatchRunner = Callable[[list[Any]], Sequence[Any]]


@dataclass(eq=False)
class Job:
    key: Hashable  # jobs with equal keys may share a batch
    items: list[Any]
    run: BatchRunner
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future
    cancelled: threading.Event = field(default_factory=threading.Event)
    queued_at: float = field(default_factory=time.monotonic)
    gap: float = float("inf")  # seconds since the job queued before it


class Batcher:
    """``submit`` from the event loop; the batches run on one daemon thread.
    ``on_batch(size, seconds)`` and ``on_queue(depth)`` report to the server's metrics."""

    def __init__(self, max_batch: int, max_wait_s: float,
                 on_batch: Callable[[int, float], None] = lambda size, seconds: None,
                 on_queue: Callable[[int], None] = lambda depth: None):
        self.max_batch, self.max_wait_s = max_batch, max_wait_s
        self.on_batch, self.on_queue = on_batch, on_queue
        self._waiting: collections.deque[Job] = collections.deque()
        self._changed = threading.Condition()
        self._stopping = False
        self._last_queued = float("-inf")
        self._thread = threading.Thread(target=self._serve, name="nlpapp-model", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Finish the batch in progress, fail what still waits, and end the thread."""
        with self._changed:
            self._stopping = True
            left, self._waiting = list(self._waiting), collections.deque()
            self._changed.notify_all()
        for job in left:
            _settle(job, error=RuntimeError("the server is shutting down"))
        if self._thread.is_alive():
            self._thread.join(timeout)

    def call(self, fn: Callable[[], Any]) -> asyncio.Future:
        """Run ``fn()`` on the model thread, alone (loading models, say); its future."""
        return self.submit(object(), [None], lambda items: [fn()])

    def submit(self, key: Hashable, items: list[Any], run: BatchRunner) -> "asyncio.Future":
        """Queue ``items`` to run as part of a batch of jobs with the same ``key``; returns
        a future of their results, in order. Call from the event loop. Set the returned
        future's ``job.cancelled`` (``future.job``) when the caller no longer waits."""
        loop = asyncio.get_running_loop()
        job = Job(key, items, run, loop, loop.create_future())
        job.future.job = job  # type: ignore[attr-defined]
        with self._changed:
            if self._stopping:
                raise RuntimeError("the server is shutting down")
            job.gap, self._last_queued = job.queued_at - self._last_queued, job.queued_at
            self._waiting.append(job)
            self.on_queue(len(self._waiting))
            self._changed.notify_all()
        return job.future

    @property
    def depth(self) -> int:
        return len(self._waiting)

    # --- the model thread ----------------------------------------------------------------

    def _serve(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            started = time.perf_counter()
            self._run(batch)
            self.on_batch(sum(len(job.items) for job in batch), time.perf_counter() - started)

    def _next_batch(self) -> list[Job] | None:
        with self._changed:
            while True:
                self._drop_cancelled()
                if self._stopping:
                    return None
                if not self._waiting:
                    self._changed.wait()
                    continue
                first = self._waiting[0]
                batch = self._gather(first.key)
                size = sum(len(job.items) for job in batch)
                wait = first.queued_at + self.max_wait_s - time.monotonic()
                if size >= self.max_batch or wait <= 0 or first.gap > self.max_wait_s:
                    for job in batch:
                        self._waiting.remove(job)
                    self.on_queue(len(self._waiting))
                    return batch
                self._changed.wait(wait)

    def _gather(self, key: Hashable) -> list[Job]:
        """Waiting jobs with ``key``, oldest first, up to ``max_batch`` items (the first job whole)."""
        batch, size = [], 0
        for job in self._waiting:
            if job.key == key and (not batch or size + len(job.items) <= self.max_batch):
                batch.append(job)
                size += len(job.items)
        return batch

    def _drop_cancelled(self) -> None:
        for job in [j for j in self._waiting if j.cancelled.is_set()]:
            self._waiting.remove(job)
            _settle(job, cancelled=True)

    def _run(self, batch: list[Job]) -> None:
        items = [item for job in batch for item in job.items]
        try:
            with cancel.stop_when(lambda: all(job.cancelled.is_set() for job in batch)):
                results = list(batch[0].run(items))
            if len(results) != len(items):
                raise RuntimeError(f"a batch of {len(items)} inputs gave {len(results)} results")
        except Exception as exc:  # noqa: BLE001 - every failure goes back to its request
            if len(batch) > 1:  # find whose input it was: each job alone
                for job in batch:
                    self._run([job])
                return
            _settle(batch[0], error=exc)
            return
        start = 0
        for job in batch:
            _settle(job, result=results[start:start + len(job.items)])
            start += len(job.items)


def _settle(job: Job, result: Any = None, error: BaseException | None = None, cancelled: bool = False) -> None:
    def resolve() -> None:
        if job.future.done():
            return
        if cancelled:
            job.future.cancel()
        elif error is not None:
            job.future.set_exception(error)
        else:
            job.future.set_result(result)

    try:
        job.loop.call_soon_threadsafe(resolve)
    except RuntimeError:  # the loop is closed: nobody waits any more
        pass
