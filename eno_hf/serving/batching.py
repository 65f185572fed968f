"""Dynamic batching across concurrent requests (the scheme of Triton's dynamic batcher / TF Serving's
batching: collect requests until ``max_batch_size`` or ``max_wait_s`` after the first, then run one
forward pass).

``DynamicBatcher.submit(item)`` is awaited by each request handler; one asyncio task collects
items from a bounded queue and runs ``fn(items)`` on ONE dedicated worker thread, so inference never
blocks the event loop and the model is never entered by two threads at once. If a batch fails,
its items are retried one by one, so one bad item only fails its own request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Overloaded(RuntimeError):
    """The queue is full (``queue_size`` items waiting); the caller should answer 503."""


@dataclass
class BatchTiming:
    """How one item was served: ``queue_ms`` (submit -> its batch started), ``inference_ms`` (the
    batch's ``fn`` call, wall clock), ``batch_size`` (items in that call)."""

    queue_ms: float
    inference_ms: float
    batch_size: int


@dataclass
class BatcherStats:
    """Counters since start: batches run, items served, items failed, largest batch."""

    batches: int = 0
    items: int = 0
    failed: int = 0
    max_batch: int = 0
    sizes: dict[int, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        mean = self.items / self.batches if self.batches else 0.0
        return {"batches": self.batches, "items": self.items, "failed": self.failed,
                "max_batch_size_seen": self.max_batch, "mean_batch_size": round(mean, 3),
                "batch_sizes": {str(k): v for k, v in sorted(self.sizes.items())}}


class DynamicBatcher(Generic[T, R]):
    """Batch ``submit`` calls into ``fn(list[T]) -> list[R]`` calls.

    Args:
        fn: the batch function (run on the worker thread); must return one result per item.
        max_batch_size: most items per call (1 disables batching).
        max_wait_s: how long the first item of a batch waits for more, in seconds.
        queue_size: most items waiting; ``submit`` raises ``Overloaded`` beyond it.
        thread_init: called once on the worker thread before the first batch (e.g. ``torch.set_num_threads``).

    Use inside a running event loop: ``await start()``, ``await submit(x)``, ``await stop()``.
    """

    def __init__(self, fn: Callable[[list[T]], Sequence[R]], max_batch_size: int = 8, max_wait_s: float = 0.01,
                 queue_size: int = 256, thread_init: Callable[[], None] | None = None) -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {max_batch_size}")
        self.fn = fn
        self.max_batch_size = int(max_batch_size)
        self.max_wait_s = float(max_wait_s)
        self.queue_size = int(queue_size)
        self.stats = BatcherStats()
        self._thread_init = thread_init
        self._queue: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None

    @property
    def running(self) -> bool:
        """True while the collecting task is alive."""
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Start the worker thread and the collecting task (idempotent)."""
        if self.running:
            return
        self._queue = asyncio.Queue(maxsize=self.queue_size)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="eno-infer",
                                            initializer=self._thread_init)
        self._task = asyncio.create_task(self._loop(), name="eno-batcher")

    async def stop(self) -> None:
        """Cancel the collecting task, fail waiting items, shut the worker thread down."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
        while self._queue is not None and not self._queue.empty():
            _, fut, _ = self._queue.get_nowait()
            if not fut.done():
                fut.set_exception(RuntimeError("service stopping"))
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
        self._task = self._executor = None

    async def submit(self, item: T) -> tuple[R, BatchTiming]:
        """Queue ``item``; return ``(fn's result for it, timing)``.

        Raises:
            Overloaded: ``queue_size`` items already waiting.
            Exception: whatever ``fn`` raised for this item (run alone).
        """
        if not self.running:
            await self.start()  # started lazily too (ASGI harnesses that skip the lifespan)
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait((item, fut, time.perf_counter()))
        except asyncio.QueueFull as exc:
            raise Overloaded(f"{self.queue_size} clips already waiting") from exc
        return await fut

    async def _loop(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            deadline = loop.time() + self.max_wait_s
            while len(batch) < self.max_batch_size:
                try:
                    batch.append(self._queue.get_nowait())
                    continue
                except asyncio.QueueEmpty:
                    pass
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), remaining))
                except asyncio.TimeoutError:
                    break
            batch = [b for b in batch if not b[1].done()]  # callers that went away
            if not batch:
                continue
            started = time.perf_counter()
            results = await loop.run_in_executor(self._executor, self._run, [b[0] for b in batch])
            elapsed_ms = (time.perf_counter() - started) * 1000.0
            self.stats.batches += 1
            self.stats.items += len(batch)
            self.stats.max_batch = max(self.stats.max_batch, len(batch))
            self.stats.sizes[len(batch)] = self.stats.sizes.get(len(batch), 0) + 1
            for (_, fut, queued), result in zip(batch, results):
                if fut.done():
                    continue
                if isinstance(result, BaseException):
                    self.stats.failed += 1
                    fut.set_exception(result)
                else:
                    fut.set_result((result, BatchTiming((started - queued) * 1000.0, elapsed_ms, len(batch))))

    def _run(self, items: list[T]) -> list[Any]:
        """``fn(items)``; on failure each item alone, so only the offending items fail."""
        try:
            results = list(self.fn(items))
            if len(results) != len(items):
                raise RuntimeError(f"batch function returned {len(results)} results for {len(items)} items")
            return results
        except Exception as exc:  # noqa: BLE001 - isolate the failing item(s)
            if len(items) == 1:
                return [exc]
        out: list[Any] = []
        for item in items:
            try:
                out.append(self.fn([item])[0])
            except Exception as exc:  # noqa: BLE001
                out.append(exc)
        return out


class _Budget:
    """One limited quantity in flight (bytes or seconds): reserve / release under a shared lock.

    Args:
        limit: the most that may be reserved at once.
        lock: the lock shared by the budgets of one ``InflightBudget``.
        describe: ``(total that would be reserved, limit) -> Overloaded message``.
    """

    def __init__(self, limit: float, lock: Any, describe: Callable[[float, float], str]) -> None:
        self.limit = limit
        self.used = type(limit)(0)
        self.peak = type(limit)(0)
        self.refused = 0
        self._lock = lock
        self._describe = describe

    def reserve(self, amount: float, force: bool = False) -> None:
        """Reserve ``amount``. Raises ``Overloaded`` when ``used + amount > limit`` (unless ``force``)."""
        with self._lock:
            if not force and self.used + amount > self.limit:
                self.refused += 1
                raise Overloaded(self._describe(self.used + amount, self.limit))
            self.used += amount
            self.peak = max(self.peak, self.used)

    def release(self, amount: float) -> None:
        """Give back ``amount`` (never below 0)."""
        with self._lock:
            self.used = max(type(self.limit)(0), self.used - amount)


class InflightBudget:
    """A global budget of work in flight across all requests: request-body bytes and seconds of audio.

    Each request reserves its body bytes (``reserve_bytes``, as they stream in or from
    ``Content-Length``) and each file the seconds of audio it will expand to, measured before
    decoding (``reserve_seconds``); both are released when the request or file is done. A reservation
    that would pass a limit raises ``Overloaded`` (HTTP 503 ``overloaded``) and reserves nothing.
    Thread-safe (decoding threads reserve seconds).

    Args:
        max_bytes: limit on reserved bytes.
        max_seconds: limit on reserved seconds of audio.
    """

    def __init__(self, max_bytes: int, max_seconds: float) -> None:
        import threading

        self._lock = threading.Lock()
        self._bytes = _Budget(int(max_bytes), self._lock, lambda total, limit:
                              f"{total} request bytes in flight > max_inflight_mb={limit / 2**20:g}")
        self._seconds = _Budget(float(max_seconds), self._lock, lambda total, limit:
                                f"{total:.0f} s of audio in flight > max_inflight_audio_s={limit:g}")

    def reserve_bytes(self, n: int) -> None:
        """Reserve ``n`` bytes. Raises ``Overloaded`` when ``bytes + n > max_bytes``."""
        self._bytes.reserve(n)

    def release_bytes(self, n: int) -> None:
        """Give back ``n`` reserved bytes."""
        self._bytes.release(n)

    def reserve_seconds(self, s: float, force: bool = False) -> None:
        """Reserve ``s`` seconds of audio. Raises ``Overloaded`` when ``seconds + s > max_seconds``
        (unless ``force``: used to account for audio that is already decoded)."""
        self._seconds.reserve(s, force)

    def release_seconds(self, s: float) -> None:
        """Give back ``s`` reserved seconds."""
        self._seconds.release(s)

    def as_dict(self) -> dict[str, Any]:
        """Current and peak reservations, limits, refusals (for ``GET /health``)."""
        b, s = self._bytes, self._seconds
        with self._lock:
            return {"bytes": b.used, "max_bytes": b.limit, "peak_bytes": b.peak,
                    "audio_s": round(s.used, 3), "max_audio_s": s.limit,
                    "peak_audio_s": round(s.peak, 3), "refused": b.refused + s.refused}
