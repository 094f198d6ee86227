"""Micro-batching: merge concurrent requests into one model call.

A :class:`MicroBatcher` owns one worker task. Requests wait in a queue; the worker takes the
oldest one, keeps collecting requests that can share its model call (same ``key``) until the
token budget is full or the oldest has waited ``max_wait_ms``, and runs the model function in a
thread, so the event loop keeps accepting requests while the model runs. Requests that arrive
during a model call are already waiting when it ends and go in the next batch at once, so under
load batches grow by themselves. The model function is expected to sort the merged inputs by
length and pack them to the same token budget (as :meth:`t5cls.Classifier.predict_proba` does).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

RunBatch = Callable[[list[Any], Hashable], Sequence[Any]]


class BatcherClosedError(RuntimeError):
    """The batcher is shutting down and takes no new requests."""


@dataclass
class _Request:
    items: list[Any]
    costs: list[int]
    key: Hashable
    future: asyncio.Future
    arrived: float


@dataclass
class BatchStats:
    """Counters for monitoring: how many requests, inputs and model calls were served."""

    requests: int = 0
    items: int = 0
    batches: int = 0
    failed_requests: int = 0
    largest_batch: int = 0

    def as_dict(self) -> dict[str, Any]:
        mean = self.items / self.batches if self.batches else 0.0
        return {
            "requests": self.requests,
            "inputs": self.items,
            "batches": self.batches,
            "failed_requests": self.failed_requests,
            "mean_batch_size": round(mean, 2),
            "largest_batch": self.largest_batch,
        }


class MicroBatcher:
    """Merge concurrent requests into model calls under a padded-token budget.

    Args:
        run: ``run(items, key) -> results``, one result per item in order; called in ``executor``.
        max_batch_tokens: most padded tokens (inputs x longest cost) merged into one call; a single
            request above the budget still runs, alone.
        max_batch_size: most inputs merged into one call (``None``: only the token budget counts;
            ``1``: every request runs alone, i.e. batching off). A request is never split.
        max_wait_ms: how long the oldest waiting request may wait for others to join it.
        executor: where ``run`` executes (a one-thread pool keeps model calls one at a time);
            ``None`` uses the event loop's default executor.

    Raises:
        ValueError: a limit that is not positive.

    Example:
        >>> async def main():  # doctest: +SKIP
        ...     batcher = MicroBatcher(lambda items, key: [len(t) for t in items], max_wait_ms=2)
        ...     batcher.start()
        ...     print(await batcher.submit(["a", "bb"], costs=[1, 2]))
        ...     await batcher.close()
    """

    def __init__(
        self,
        run: RunBatch,
        *,
        max_batch_tokens: int = 8192,
        max_batch_size: int | None = None,
        max_wait_ms: float = 5.0,
        executor: Executor | None = None,
    ):
        if max_batch_tokens < 1:
            raise ValueError(f"max_batch_tokens={max_batch_tokens} must be a positive number of tokens.")
        if max_batch_size is not None and max_batch_size < 1:
            raise ValueError(f"max_batch_size={max_batch_size} must be at least 1 (1 turns merging off), or None.")
        if max_wait_ms < 0:
            raise ValueError(f"max_wait_ms={max_wait_ms} must be zero or more milliseconds.")
        self.run = run
        self.max_batch_tokens = max_batch_tokens
        self.max_batch_size = max_batch_size
        self.max_wait_ms = max_wait_ms
        self.executor = executor
        self.stats = BatchStats()
        self._pending: deque[_Request] = deque()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._closing = False

    @property
    def alive(self) -> bool:
        """Whether the worker task is running (False before :meth:`start` and after it stopped)."""
        return self._task is not None and not self._task.done()

    @property
    def queued(self) -> int:
        """Requests waiting for a model call (not counting the one running)."""
        return len(self._pending)

    def start(self) -> None:
        """Start the worker task; call from inside the running event loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._worker(), name="t5cls-micro-batcher")

    async def close(self) -> None:
        """Stop taking requests, answer every queued one, then stop the worker."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def submit(self, items: Sequence[Any], *, costs: Sequence[int], key: Hashable = None) -> list[Any]:
        """Queue ``items`` and wait for their results (one per item, in order).

        Args:
            items: the inputs of one request.
            costs: the (estimated) token count of each input.
            key: only requests with equal keys share a model call (e.g. the same label set).

        Raises:
            BatcherClosedError: the batcher is shutting down.
            Exception: whatever ``run`` raised for this request's inputs.
        """
        if self._closing or not self.alive:
            raise BatcherClosedError("The server is shutting down (or not started) and takes no new requests.")
        if len(costs) != len(items):
            raise ValueError(f"Got {len(items)} items but {len(costs)} costs; pass one cost per item.")
        loop = asyncio.get_running_loop()
        request = _Request(list(items), [max(int(c), 1) for c in costs], key, loop.create_future(), loop.time())
        self._pending.append(request)
        self._wakeup.set()
        return await request.future

    # --- worker ----------------------------------------------------------------------------

    def _select(self, key: Hashable) -> tuple[list[_Request], bool]:
        """The queued requests (oldest first) with ``key`` that fit one call, and whether it is full."""
        chosen: list[_Request] = []
        count = longest = 0
        for request in self._pending:
            if request.key != key or request.future.done():
                continue
            new_count = count + len(request.items)
            new_longest = max(longest, max(request.costs, default=1))
            too_many = self.max_batch_size is not None and new_count > self.max_batch_size
            if chosen and (too_many or new_count * new_longest > self.max_batch_tokens):
                return chosen, True
            chosen.append(request)
            count, longest = new_count, new_longest
        full = count * longest >= self.max_batch_tokens or (
            self.max_batch_size is not None and count >= self.max_batch_size
        )
        return chosen, full

    async def _worker(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            # Requests whose client went away (cancelled futures) are dropped unanswered.
            while self._pending and self._pending[0].future.done():
                self._pending.popleft()
            if not self._pending:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            oldest = self._pending[0]
            # The wait counts from the oldest request's arrival: requests that queued up during
            # the previous model call have waited already and go at once.
            deadline = oldest.arrived + self.max_wait_ms / 1000.0
            chosen, full = self._select(oldest.key)
            while not full and not self._closing and (remaining := deadline - loop.time()) > 0:
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), remaining)
                except asyncio.TimeoutError:  # the same class as TimeoutError from Python 3.11
                    pass
                chosen, full = self._select(oldest.key)
            taken = set(map(id, chosen))
            self._pending = deque(r for r in self._pending if id(r) not in taken)
            await self._run_group(chosen, oldest.key)

    async def _run_group(self, group: list[_Request], key: Hashable) -> None:
        loop = asyncio.get_running_loop()
        items = [item for request in group for item in request.items]
        self.stats.batches += 1
        self.stats.largest_batch = max(self.stats.largest_batch, len(items))
        try:
            results = await loop.run_in_executor(self.executor, self._call, items, key)
        except Exception as exc:  # noqa: BLE001 - handed to the request(s) it belongs to
            if len(group) == 1:
                self._finish(group[0], error=exc)
                return
            # Find whose input broke the merged call: run each request alone, so one bad
            # request fails alone and the others still get their answers.
            logger.info("A merged batch of %d requests failed (%s); retrying them one by one.", len(group), exc)
            for request in group:
                try:
                    alone = await loop.run_in_executor(self.executor, self._call, request.items, key)
                except Exception as single_exc:  # noqa: BLE001
                    self._finish(request, error=single_exc)
                else:
                    self._finish(request, results=alone)
            return
        start = 0
        for request in group:
            self._finish(request, results=results[start : start + len(request.items)])
            start += len(request.items)

    def _call(self, items: list[Any], key: Hashable) -> list[Any]:
        results = list(self.run(items, key))
        if len(results) != len(items):
            raise RuntimeError(f"The model function returned {len(results)} results for {len(items)} inputs.")
        return results

    def _finish(self, request: _Request, *, results: list[Any] | None = None, error: BaseException | None = None) -> None:
        self.stats.requests += 1
        self.stats.items += len(request.items)
        if request.future.done():  # the client went away
            return
        if error is not None:
            self.stats.failed_requests += 1
            request.future.set_exception(error)
        else:
            request.future.set_result(results)


__all__ = ["MicroBatcher", "BatcherClosedError", "BatchStats"]
