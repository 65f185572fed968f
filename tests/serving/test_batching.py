"""``DynamicBatcher``: concurrent submits share calls, failures stay with their item, overload is refused."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from eno_hf.serving.batching import DynamicBatcher, Overloaded


def run(coro):
    return asyncio.run(coro)


def test_concurrent_items_are_batched_and_answered_in_order():
    calls: list[list[int]] = []
    threads: set[str] = set()

    def fn(items):
        calls.append(list(items))
        threads.add(threading.current_thread().name)
        time.sleep(0.02)
        return [x * 10 for x in items]

    async def main():
        b = DynamicBatcher(fn, max_batch_size=4, max_wait_s=0.05)
        await b.start()
        results = await asyncio.gather(*(b.submit(i) for i in range(10)))
        await b.stop()
        return b, results

    b, results = run(main())
    assert [r for r, _ in results] == [i * 10 for i in range(10)]
    assert max(len(c) for c in calls) == 4 and len(calls) <= 4
    assert sorted(x for c in calls for x in c) == list(range(10))
    assert all(t.startswith("eno-infer") for t in threads) and len(threads) == 1
    assert b.stats.items == 10 and b.stats.batches == len(calls)
    assert all(timing.batch_size == len(next(c for c in calls if r // 10 in c)) for r, timing in results)


def test_batch_size_one_never_batches():
    sizes = []

    def fn(items):
        sizes.append(len(items))
        return items

    async def main():
        b = DynamicBatcher(fn, max_batch_size=1, max_wait_s=0.05)
        await b.start()
        await asyncio.gather(*(b.submit(i) for i in range(5)))
        await b.stop()

    run(main())
    assert sizes == [1] * 5


def test_failing_item_fails_alone():
    def fn(items):
        if any(x < 0 for x in items):
            raise ValueError("negative")
        return [x + 1 for x in items]

    async def main():
        b = DynamicBatcher(fn, max_batch_size=8, max_wait_s=0.05)
        await b.start()
        out = await asyncio.gather(*(b.submit(x) for x in [1, -1, 2, 3]), return_exceptions=True)
        await b.stop()
        return out

    out = run(main())
    assert [o[0] for o in (out[0], out[2], out[3])] == [2, 3, 4]
    assert isinstance(out[1], ValueError)


def test_overloaded_queue_is_refused():
    gate = threading.Event()

    def fn(items):
        gate.wait(5)
        return items

    async def main():
        b = DynamicBatcher(fn, max_batch_size=1, max_wait_s=0.0, queue_size=2)
        await b.start()
        first = asyncio.ensure_future(b.submit(0))
        await asyncio.sleep(0.05)  # item 0 is running, the queue is empty again
        waiting = [asyncio.ensure_future(b.submit(i)) for i in (1, 2)]
        await asyncio.sleep(0)
        with pytest.raises(Overloaded):
            await b.submit(3)
        gate.set()
        done = await asyncio.gather(first, *waiting)
        await b.stop()
        return [d[0] for d in done]

    assert run(main()) == [0, 1, 2]
