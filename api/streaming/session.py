"""One streaming session: admission (in-flight limit + one-slot mailbox), ordered replies, and
the pressure state. The router feeds it valid frames; it never reads the socket itself.

Admission happens synchronously when a frame arrives, before any inference work: a frame either
starts inference at once (a slot is free), waits in the mailbox, or replaces the waiting frame,
which is then reported dropped. So a dropped frame costs nothing but its bytes. A started frame
that the batcher expires (it could only be answered after the latency budget, and was never sent)
is reported dropped too, in its place in the frame order.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum

from api.core import metrics
from api.inference.errors import (
    FrameErrorCode,
    FrameExpired,
    InferenceUnavailable,
    PipelineFailure,
)
from api.streaming import protocol
from api.streaming.backpressure import DropWindow, PressureState, PressureTracker
from api.streaming.protocol import ErrorCode, StreamError

log = logging.getLogger("framegate.stream")

# Bound once: `labels()` takes a lock and a dict lookup, and these count every frame.
_RECEIVED = metrics.STREAM_FRAMES.labels("received")
_DROPPED = metrics.STREAM_FRAMES.labels("dropped")
_PROCESSED = metrics.STREAM_FRAMES.labels("processed")


class SessionState(StrEnum):
    OPEN = "open"  # admitting frames
    FINISHING = "finishing"  # draining: answers the frames it admitted, admits no more
    TERMINATED = "terminated"  # a reason to close is set; the router closes the socket with it
    CLOSED = "closed"  # everything released


_NEXT = {
    SessionState.OPEN: frozenset({SessionState.FINISHING, SessionState.TERMINATED}),
    SessionState.FINISHING: frozenset({SessionState.TERMINATED}),
    SessionState.TERMINATED: frozenset({SessionState.CLOSED}),
    SessionState.CLOSED: frozenset(),
}


class SessionStateError(RuntimeError):
    """A session asked to do what its state does not allow (a bug in the caller)."""


Infer = Callable[[bytes, float], Awaitable[dict]]  # (JPEG, arrival time.monotonic()) -> result
Send = Callable[[str], Awaitable[None]]


@dataclass(frozen=True)
class SessionLimits:
    max_inflight: int = 1
    drop_threshold: float = 0.10
    slowdown_threshold: float = 0.30
    window_s: float = 1.5
    # Triton unreachable: frames are answered dropped for this long before the session closes.
    unavailable_grace_s: float = 10.0
    # Frames Triton fails in a row (each answered with a per-frame error) before the session
    # closes with pipeline_failure.
    max_consecutive_failures: int = 5


@dataclass(frozen=True)
class Termination:
    """Why a session ends: close code and reason, and the error sent before closing (if any)."""

    close_code: int
    reason: str
    error: StreamError | None = None

    @classmethod
    def from_error(cls, error: StreamError) -> Termination:
        # The reason is cut to a close frame's limit; the full detail goes in the error message.
        return cls(error.close_code, protocol.close_reason(error.detail), error)

    @property
    def outcome(self) -> str:
        return str(self.error.code) if self.error else f"closed_{self.close_code}"


@dataclass
class _Frame:
    index: int
    data: bytes
    received: float
    reply: str | None = None
    # Answered dropped once its turn comes: "expired" (the latency budget: the client sends too
    # fast, which counts towards slow_down) or "unavailable" (Triton down: not the client's rate).
    dropped: str | None = None


@dataclass
class StreamSession:
    pipeline_id: str
    infer: Infer
    send: Send
    limits: SessionLimits = field(default_factory=SessionLimits)
    session_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    targeting_key: str = ""
    tenant: str | None = None

    def __post_init__(self) -> None:
        self.started = time.monotonic()
        self.received = self.processed = self.dropped = 0
        self.pressure = PressureTracker(
            DropWindow(self.limits.window_s),
            self.limits.drop_threshold,
            self.limits.slowdown_threshold,
        )
        self._unavailable_since: float | None = None
        self._consecutive_failures = 0
        self._mailbox: _Frame | None = None
        self.lifecycle = SessionState.OPEN
        self._inflight: deque[_Frame] = deque()  # started, in frame order; replies go out in order
        self._tasks: set[asyncio.Task[None]] = set()
        # Every write to the socket, including the router's final error and close, holds this:
        # two tasks sending at once can lose a message.
        self.send_lock = asyncio.Lock()
        self.terminated: asyncio.Future[Termination] = asyncio.get_running_loop().create_future()
        self.targeting_key = self.targeting_key or self.session_id
        self._latency = metrics.STREAM_LATENCY.labels(self.pipeline_id)  # bound once, as above
        self._expired = metrics.STREAM_EXPIRED.labels(self.pipeline_id)

    @property
    def state(self) -> PressureState:
        return self.pressure.state

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    def _move(self, to: SessionState) -> None:
        if to not in _NEXT[self.lifecycle]:
            raise SessionStateError(
                f"session {self.session_id}: cannot go from {self.lifecycle} to {to}"
            )
        self.lifecycle = to

    async def offer(self, data: bytes) -> int:
        """Admit one valid frame; returns its frame_index."""
        if self.lifecycle is SessionState.CLOSED:
            raise SessionStateError(f"session {self.session_id}: offer() after it was closed")
        frame = _Frame(self.received, data, time.monotonic())
        self.received += 1
        _RECEIVED.inc()
        self.pressure.window.record_arrival()
        if self.lifecycle is not SessionState.OPEN:
            await self._drop(frame, pressure=False)  # draining or ending: no new inference
        elif len(self._inflight) < self.limits.max_inflight:
            self._start(frame)
        else:
            replaced, self._mailbox = self._mailbox, frame
            if replaced is not None:
                await self._drop(replaced)
        await self._update_pressure()
        return frame.index

    async def _update_pressure(self) -> None:
        # Drops happen at admission and (expired frames) when replies go out: either may be the
        # one that makes the session critical, and the warning goes out wherever it does.
        if self.pressure.update():
            metrics.STREAM_SLOWDOWN.inc()
            await self._emit(protocol.slow_down_message(self.pressure.suggested_fps()))

    async def _drop(self, frame: _Frame, pressure: bool = True) -> None:
        self._count_drop(pressure)
        await self._emit(protocol.dropped_message(frame.index))

    def _count_drop(self, pressure: bool = True) -> None:
        self.dropped += 1
        _DROPPED.inc()
        if pressure:
            self.pressure.window.record_drop()

    def _start(self, frame: _Frame) -> None:
        self._inflight.append(frame)
        task = asyncio.create_task(self._run(frame), name=f"frame-{self.session_id}-{frame.index}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, frame: _Frame) -> None:
        try:
            result = await self.infer(frame.data, frame.received)
        except FrameExpired:
            self._expired.inc()
            await self._answer_dropped(frame, "expired")
            return
        except InferenceUnavailable as exc:
            await self._unavailable(frame, exc)
            return
        except PipelineFailure as exc:
            await self._failed(frame, exc)
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("frame processing failed", extra={"session_id": self.session_id})
            self.fail(
                StreamError(ErrorCode.INTERNAL_ERROR, "internal error while processing a frame")
            )
            return
        self._unavailable_since, self._consecutive_failures = None, 0
        elapsed = time.monotonic() - frame.received
        frame.reply = protocol.result_message(frame.index, result, elapsed * 1000)
        self._latency.observe(elapsed)
        await self._flush()

    async def _answer_dropped(self, frame: _Frame, why: str) -> None:
        frame.reply, frame.dropped = protocol.dropped_message(frame.index), why
        await self._flush()

    async def _unavailable(self, frame: _Frame, exc: InferenceUnavailable) -> None:
        """Triton unreachable: the frame is dropped and the session waits out a grace period
        (a restart, a replica replaced) before giving up."""
        now = time.monotonic()
        if self._unavailable_since is None:
            self._unavailable_since = now
        if now - self._unavailable_since >= self.limits.unavailable_grace_s:
            grace = self.limits.unavailable_grace_s
            self.fail(
                StreamError(
                    ErrorCode.INFERENCE_UNAVAILABLE,
                    f"inference unavailable for {grace:g}s: {exc}",
                )
            )
            return
        await self._answer_dropped(frame, "unavailable")

    async def _failed(self, frame: _Frame, exc: PipelineFailure) -> None:
        """Triton failed this frame (alone: the batcher isolates it): a per-frame error result,
        and the session goes on unless the pipeline keeps failing."""
        self._consecutive_failures += 1
        if self._consecutive_failures >= self.limits.max_consecutive_failures:
            count = self._consecutive_failures
            self.fail(
                StreamError(
                    ErrorCode.PIPELINE_FAILURE, f"pipeline failed on {count} frames in a row: {exc}"
                )
            )
            return
        metrics.STREAM_FRAME_FAILURES.labels(self.pipeline_id).inc()
        code = str(FrameErrorCode.PIPELINE_FAILURE)
        error = {"error": code, "detail": f"pipeline failed: {exc}"}
        elapsed = time.monotonic() - frame.received
        frame.reply = protocol.result_message(frame.index, error, elapsed * 1000)
        await self._flush()

    async def _flush(self) -> None:
        """Send finished replies in frame order, then refill freed slots from the mailbox."""
        while self._inflight and self._inflight[0].reply is not None:
            done = self._inflight.popleft()
            reply = done.reply
            assert reply is not None  # the loop condition: only answered frames leave
            if done.dropped:
                self._count_drop(pressure=done.dropped == "expired")
            else:
                self.processed += 1
                _PROCESSED.inc()
                self.pressure.window.record_completion()
            await self._emit(reply)
        while self._mailbox is not None and len(self._inflight) < self.limits.max_inflight:
            waiting, self._mailbox = self._mailbox, None
            self._start(waiting)
        await self._update_pressure()

    async def _emit(self, message: str) -> None:
        if self.terminated.done():
            return
        async with self.send_lock:
            try:
                await self.send(message)
            except Exception:  # the peer is gone; the router sees the disconnect and cleans up
                self.fail(StreamError(ErrorCode.INTERNAL_ERROR, "could not send to the client"))

    async def finish(self, timeout_s: float) -> None:
        """Graceful drain: admit no more frames (later ones are answered dropped), answer the
        waiting one dropped, and give the frames already at inference `timeout_s` to get their
        result. Any still unanswered then are answered dropped: every frame gets its reply
        before the router closes the session (1012)."""
        if self.lifecycle is SessionState.OPEN:
            self._move(SessionState.FINISHING)
        if self._mailbox is not None:
            waiting, self._mailbox = self._mailbox, None
            await self._drop(waiting, pressure=False)
        if self._tasks:
            _, late = await asyncio.wait(set(self._tasks), timeout=max(0.0, timeout_s))
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        for frame in self._inflight:
            if frame.reply is None:
                frame.reply, frame.dropped = protocol.dropped_message(frame.index), "unavailable"
        await self._flush()

    def fail(self, error: StreamError) -> None:
        self.terminate(Termination.from_error(error))

    def terminate(self, termination: Termination) -> None:
        """First reason wins (later ones are ignored); the router closes the socket with it."""
        if self.lifecycle in (SessionState.OPEN, SessionState.FINISHING):
            self._move(SessionState.TERMINATED)
        if not self.terminated.done():
            self.terminated.set_result(termination)

    async def aclose(self) -> None:
        """Release everything the session holds (the seed's memory leak: sessions never freed)."""
        self._mailbox = None
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._inflight.clear()
        self.terminate(Termination(protocol.WS_1000_NORMAL_CLOSURE, "session closed"))
        if self.lifecycle is SessionState.TERMINATED:
            self._move(SessionState.CLOSED)
