"""Cross-session micro-batcher: frames from every session share Triton requests.

A batch is sent when it reaches `max_size` or when its oldest frame has waited `max_delay_s`.
Up to `max_inflight` batches are at Triton at once; while all slots are busy frames keep
collecting, so batches grow exactly when the server is the bottleneck. Each caller awaits its own
future; an error fails only the callers of the batch it happened in.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

InferBatch = Callable[[list[bytes]], Awaitable[list[dict]]]
BatchObserver = Callable[[int, float], None]  # (batch size, seconds at Triton)


class BatcherClosed(RuntimeError):
    pass


@dataclass
class _Item:
    frame: bytes
    future: asyncio.Future[dict]
    enqueued: float


class MicroBatcher:
    def __init__(
        self,
        infer: InferBatch,
        max_size: int = 8,
        max_delay_s: float = 0.005,
        max_inflight: int = 2,
        observer: BatchObserver | None = None,
    ) -> None:
        if max_size < 1 or max_inflight < 1 or max_delay_s < 0:
            raise ValueError("max_size and max_inflight must be >= 1 and max_delay_s >= 0")
        self._infer = infer
        self._max_size = max_size
        self._max_delay_s = max_delay_s
        self._slots = asyncio.Semaphore(max_inflight)
        self._observer = observer
        self._pending: list[_Item] = []
        self._arrived = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self._dispatcher = asyncio.create_task(self._dispatch(), name="micro-batcher")

    @property
    def queued(self) -> int:
        return len(self._pending)

    def submit(self, frame: bytes) -> asyncio.Future[dict]:
        """Queue one frame; the returned future resolves to its result (or raises)."""
        if self._closed:
            raise BatcherClosed("batcher is closed")
        future: asyncio.Future[dict] = asyncio.get_running_loop().create_future()
        self._pending.append(_Item(frame, future, time.monotonic()))
        self._arrived.set()
        return future

    async def infer(self, frame: bytes) -> dict:
        return await self.submit(frame)

    async def _dispatch(self) -> None:
        while True:
            await self._arrived.wait()
            self._drop_cancelled()
            if not self._pending:
                self._arrived.clear()
                continue
            deadline = self._pending[0].enqueued + self._max_delay_s
            while len(self._pending) < self._max_size and (left := deadline - time.monotonic()) > 0:
                self._arrived.clear()
                try:
                    await asyncio.wait_for(self._arrived.wait(), left)
                except TimeoutError:
                    break
            await self._slots.acquire()
            self._drop_cancelled()
            batch, self._pending = self._pending[: self._max_size], self._pending[self._max_size :]
            if not batch:
                self._slots.release()
                continue
            task = asyncio.create_task(self._send(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _drop_cancelled(self) -> None:
        # A session that went away cancels its futures; its frames cost no inference.
        self._pending = [item for item in self._pending if not item.future.done()]

    async def _send(self, batch: list[_Item]) -> None:
        started = time.perf_counter()
        try:
            results = await self._infer([item.frame for item in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"{len(results)} results for a batch of {len(batch)}")
        except Exception as exc:
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(exc)
            return
        finally:
            self._slots.release()
            if self._observer is not None:
                self._observer(len(batch), time.perf_counter() - started)
        for item, result in zip(batch, results, strict=True):
            if not item.future.done():
                item.future.set_result(result)

    async def close(self) -> None:
        """Stop accepting frames, fail what is still queued, wait for in-flight batches."""
        self._closed = True
        self._dispatcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._dispatcher
        for item in self._pending:
            if not item.future.done():
                item.future.set_exception(BatcherClosed("batcher closed before the frame was sent"))
        self._pending = []
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
