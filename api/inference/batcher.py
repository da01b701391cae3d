"""Cross-session micro-batcher: frames from every session share Triton requests.

A batch is sent when it reaches `max_size` or when its oldest frame has waited `max_delay_s`.
Up to `max_inflight` batches are at Triton at once; while all slots are busy frames keep
collecting, so batches grow exactly when the server is the bottleneck. Each caller awaits its own
future; an error fails only the callers of the batch it happened in.

With a latency budget (api/inference/latency_budget.py), every frame also waits for room in an
adaptive window of frames at Triton, and live frames (submitted with their arrival time) expire,
unsent, once they could only be answered late: their callers get `FrameExpired` the moment that
happens, so their sessions can move on to a fresher frame at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from api.inference.errors import BatcherClosed, FrameExpired, PipelineFailure
from api.inference.latency_budget import LatencyBudget

# The window's floor: one frame per batch slot keeps a server's parallel instances busy, but no
# more than this, or a setup with hundreds of slots (one request per frame) escapes the budget.
MIN_WINDOW = 4
# Hand-over (with a budget): once the oldest batch at Triton has been out for all but this share
# of the smoothed round trip, one batch beyond max_inflight may go, so the model instance it
# frees finds its next batch already queued instead of idling through the gateway's turnaround.
# Sent any earlier it would wait behind a whole model run (docs/BENCHMARKS.md, issue 10).
HANDOVER = 0.2

InferBatch = Callable[[list[bytes]], Awaitable[list[dict]]]
BatchObserver = Callable[[int, float], None]  # (batch size, seconds at Triton)


__all__ = ["MicroBatcher"]  # its errors live in api.inference.errors


@dataclass
class _Item:
    frame: bytes
    future: asyncio.Future[dict]
    enqueued: float
    deadline: float | None = None  # live frames only


def _deadline(item: _Item) -> float:
    assert item.deadline is not None  # only live frames are ordered by deadline
    return item.deadline


class MicroBatcher:
    def __init__(
        self,
        infer: InferBatch,
        max_size: int = 8,
        max_delay_s: float = 0.005,
        max_inflight: int = 2,
        observer: BatchObserver | None = None,
        latency_budget_s: float | None = None,
        handover: float = HANDOVER,
    ) -> None:
        if max_size < 1 or max_inflight < 1 or max_delay_s < 0 or not 0 <= handover < 1:
            raise ValueError(
                "max_size and max_inflight must be >= 1, max_delay_s >= 0, 0 <= handover < 1"
            )
        self.budget = (
            LatencyBudget(latency_budget_s, max_size * max_inflight, min(max_inflight, MIN_WINDOW))
            if latency_budget_s
            else None
        )
        self._infer = infer
        self._max_size = max_size
        self._max_delay_s = max_delay_s
        self._max_inflight = max_inflight
        self._handover = handover
        self._sent_at: dict[int, float] = {}  # batches at Triton: id -> time sent
        self._observer = observer
        self._pending: list[_Item] = []
        self._batches_inflight = 0
        self._frames_inflight = 0
        self._jobs_turn = False  # alternates one-frame batches between jobs and live frames
        self._arrived = asyncio.Event()
        self._freed = asyncio.Event()  # a batch came back
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self._dispatcher = asyncio.create_task(self._dispatch(), name="micro-batcher")

    @property
    def queued(self) -> int:
        return len(self._pending)

    def submit(self, frame: bytes, received: float | None = None) -> asyncio.Future[dict]:
        """Queue one frame; the returned future resolves to its result (or raises).

        `received` (time.monotonic() of the frame's arrival) marks a live frame: with a latency
        budget it may fail with FrameExpired, unsent. Without it the frame is always sent.
        """
        if self._closed:
            raise BatcherClosed("batcher is closed")
        future: asyncio.Future[dict] = asyncio.get_running_loop().create_future()
        deadline = (
            self.budget.deadline(received)
            if self.budget is not None and received is not None
            else None
        )
        self._pending.append(_Item(frame, future, time.monotonic(), deadline))
        self._arrived.set()
        return future

    async def infer(self, frame: bytes, received: float | None = None) -> dict:
        return await self.submit(frame, received)

    # ------------------------------------------------------------------ dispatch

    def _room(self) -> int:
        """Frames the next batch may carry now (0: wait for a batch to come back). With a budget
        the window bounds every frame at Triton, job frames too: a big job batch would otherwise
        hold the cores while live frames expire behind it."""
        if self.budget is None:
            return self._max_size if self._batches_inflight < self._max_inflight else 0
        # Spread the window over the slots: on CPU instances parallelism comes from requests side
        # by side, and one batch taking the whole window would leave the others idle.
        per_slot = -(-self.budget.window // self._max_inflight)
        if self._batches_inflight < self._max_inflight:
            return min(self._max_size, per_slot, self.budget.window - self._frames_inflight)
        if self._batches_inflight == self._max_inflight and self._until_handover() == 0.0:
            return min(self._max_size, per_slot)  # the share of the batch about to come back
        return 0

    def _until_handover(self) -> float | None:
        """Seconds until a batch beyond max_inflight may go (None: not while this many are out)."""
        budget = self.budget
        if (
            budget is None
            or budget.smoothed_s is None
            or self._handover == 0
            or self._batches_inflight != self._max_inflight
        ):
            return None
        due = min(self._sent_at.values()) + budget.smoothed_s * (1 - self._handover)
        return max(due - time.monotonic(), 0.0)

    async def _dispatch(self) -> None:
        while True:
            if not self._pending:
                self._arrived.clear()
                await self._arrived.wait()
            self._prune()
            if not self._pending:
                continue
            deadline = self._pending[0].enqueued + self._max_delay_s
            # Fill towards a full batch until the oldest frame has waited max_delay_s; with a
            # budget, a full batch is what the window has room for.
            target = self._max_size if self.budget is None else max(self._room(), 1)
            while len(self._pending) < target and (left := deadline - time.monotonic()) > 0:
                self._arrived.clear()
                try:
                    # asyncio.timeout, not wait_for: wait_for wraps the wait in a new task,
                    # and these waits run several times per frame.
                    async with asyncio.timeout(left):
                        await self._arrived.wait()
                except TimeoutError:
                    break
            room = await self._wait_for_room()
            batch = self._take(room)
            if batch:
                self._start(batch)

    def _take(self, room: int) -> list[_Item]:
        """The next batch. Without a budget: first come, first served. With one, live frames go
        newest first (latest deadline): under overload the freshest results are the useful ones,
        and the older frames expire instead of delaying them. Video-job frames keep their order.
        When both wait, jobs get one place per batch, or every other batch when a batch is one
        frame: neither a streaming overload nor a 16-frame job chunk starves the other."""
        if room <= 0:
            return []
        if self.budget is None:
            batch, self._pending = self._pending[:room], self._pending[room:]
            return batch
        live = sorted(
            (item for item in self._pending if item.deadline is not None),
            key=_deadline,
            reverse=True,
        )
        jobs = [item for item in self._pending if item.deadline is None]
        if not jobs or not live:
            n_jobs = min(len(jobs), room)
        elif room == 1:
            self._jobs_turn = not self._jobs_turn
            n_jobs = int(self._jobs_turn)
        else:
            n_jobs = min(len(jobs), max(room - len(live), 1))
        batch = jobs[:n_jobs] + live[: room - n_jobs]
        taken = {id(item) for item in batch}
        self._pending = [item for item in self._pending if id(item) not in taken]
        return batch

    async def _wait_for_room(self) -> int:
        """Wait until a batch may go, expiring live frames as their time runs out meanwhile.
        Only waiting frames expire: with room, even a late frame goes (late beats never)."""
        while True:
            self._prune()
            room = self._room()
            if room > 0 or not self._pending:
                return room
            self._prune(expire=True)
            if not self._pending:
                return room
            self._freed.clear()
            waits = [
                t for t in (self._until_next_expiry(), self._until_handover()) if t is not None
            ]
            try:
                async with asyncio.timeout(min(waits) if waits else None):
                    await self._freed.wait()
            except TimeoutError:
                continue

    def _until_next_expiry(self) -> float | None:
        if self.budget is None:
            return None
        times = [self.budget.send_by(i.deadline) for i in self._pending if i.deadline is not None]
        return max(min(times) - time.monotonic(), 0.0) if times else None

    def _prune(self, expire: bool = False) -> None:
        # A session that went away cancels its futures; its frames cost no inference. With
        # `expire`, a live frame that can only be answered late fails with FrameExpired, unsent.
        now = time.monotonic()
        budget = self.budget  # live frames (with a deadline) only exist with a budget
        kept: list[_Item] = []
        for item in self._pending:
            if item.future.done():
                continue
            if (
                expire
                and budget is not None
                and item.deadline is not None
                and now > budget.send_by(item.deadline)
            ):
                item.future.set_exception(FrameExpired("latency budget exceeded before sending"))
                continue
            kept.append(item)
        self._pending = kept

    def _start(self, batch: list[_Item]) -> None:
        # A hand-over batch goes beyond the slots on purpose: its coming back in time says
        # nothing about room to grow the window.
        handover = self._batches_inflight >= self._max_inflight
        self._batches_inflight += 1
        self._frames_inflight += len(batch)
        window_full = (
            self.budget is not None and not handover and self._frames_inflight >= self.budget.window
        )
        self._sent_at[id(batch)] = sent_at = time.monotonic()
        task = asyncio.create_task(self._send(batch, window_full, sent_at))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, batch: list[_Item], window_full: bool, sent_at: float) -> None:
        try:
            results = await self._infer_checked(batch)
            if self.budget is not None:
                self.budget.observe(time.monotonic() - sent_at, sent_at, window_full)
        except PipelineFailure as exc:
            await self._isolate(batch, exc)  # find the frames that fail; the others get results
            return
        except Exception as exc:
            _fail(batch, exc)
            return
        finally:
            del self._sent_at[id(batch)]
            self._batches_inflight -= 1
            self._frames_inflight -= len(batch)
            self._freed.set()
            if self._observer is not None:
                self._observer(len(batch), time.monotonic() - sent_at)
        _resolve(batch, results)

    async def _infer_checked(self, batch: list[_Item]) -> list[dict]:
        results = await self._infer([item.frame for item in batch])
        if len(results) != len(batch):
            raise PipelineFailure(f"{len(results)} results for a batch of {len(batch)}")
        return results

    async def _isolate(self, batch: list[_Item], exc: PipelineFailure) -> None:
        """Triton failed a batch: retry its halves (in parallel) until each failing frame fails
        alone, so one poisoned frame costs its own result, never its neighbours'."""
        batch = [item for item in batch if not item.future.done()]
        if len(batch) <= 1:
            _fail(batch, exc)
            return
        middle = len(batch) // 2
        await asyncio.gather(*(self._retry(half) for half in (batch[:middle], batch[middle:])))

    async def _retry(self, batch: list[_Item]) -> None:
        try:
            results = await self._infer_checked(batch)
        except PipelineFailure as exc:
            await self._isolate(batch, exc)
        except Exception as exc:
            _fail(batch, exc)
        else:
            _resolve(batch, results)

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


def _resolve(batch: list[_Item], results: list[dict]) -> None:
    for item, result in zip(batch, results, strict=True):
        if not item.future.done():
            item.future.set_result(result)


def _fail(batch: list[_Item], exc: BaseException) -> None:
    for item in batch:
        if not item.future.done():
            item.future.set_exception(exc)
