"""Closes live sessions when the `video-streaming` flag turns off for them.

Flag providers announce changes on their own threads, and some (a mounted file) only by polling,
so live sessions are re-evaluated on every change event and at least every `interval_s`.

A sweep evaluates each distinct evaluation context once, not each session, and evaluates them
concurrently (at most `concurrency` at a time, each within `evaluation_timeout_s`): with a
provider that answers in 200 ms, 64 sessions still close well within the 2 s promise.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from typing import Protocol

from api.flags.context import FlagContext
from api.flags.service import EVALUATION_THREADS
from api.streaming.protocol import ErrorCode, StreamError
from api.streaming.registry import SessionRegistry
from api.streaming.session import StreamSession

log = logging.getLogger("framegate.stream")

DEFAULT_CONCURRENCY = EVALUATION_THREADS  # what FlagService can run at once for an RPC provider
# Above flagd's own FLAGD_DEADLINE_MS (500 ms), so an RPC normally fails with its own answer (the
# default) first; this only bounds an evaluation that hangs.
DEFAULT_EVALUATION_TIMEOUT_S = 1.0
_DISABLED = "streaming was disabled"


class StreamingGate(Protocol):
    async def streaming_enabled(self, context: FlagContext) -> bool: ...


class KillSwitch:
    def __init__(
        self,
        gate: StreamingGate,
        registry: SessionRegistry,
        interval_s: float = 0.5,
        *,
        fallback: bool = True,
        concurrency: int = DEFAULT_CONCURRENCY,
        evaluation_timeout_s: float = DEFAULT_EVALUATION_TIMEOUT_S,
    ) -> None:
        """`fallback` is the answer for a context whose evaluation failed or timed out: like a
        provider with no answer, STREAMING_ENABLED (True keeps its sessions open)."""
        if concurrency < 1:
            raise ValueError(f"KillSwitch: concurrency must be at least 1, got {concurrency}")
        self._gate = gate
        self._registry = registry
        self._interval_s = interval_s
        self._fallback = fallback
        self._limit = asyncio.Semaphore(concurrency)
        self._timeout_s = evaluation_timeout_s
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def notify(self) -> None:
        """Flag change announced (call on the loop thread). A sweep already running is followed
        by another at once, so a change that arrives mid-sweep is never lost."""
        self._changed.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="flag-kill-switch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def sweep(self) -> int:
        """Re-evaluate every live session; returns how many were told to close."""
        groups: defaultdict[FlagContext, list[StreamSession]] = defaultdict(list)
        for session in self._registry:
            if not session.terminated.done():  # already closing: nothing to decide
                groups[_context(session)].append(session)
        if not groups:
            return 0
        contexts = list(groups)
        answers = await asyncio.gather(*(self._enabled(context) for context in contexts))
        failures = [answer for answer in answers if isinstance(answer, Exception)]
        if failures:
            # One line per sweep, not per context: a hung provider fails them all, every sweep.
            log.warning(
                "flag sweep: %d of %d evaluations failed (first: %r); %s used for them",
                len(failures),
                len(contexts),
                failures[0],
                self._fallback,
            )
        closed = 0
        for context, answer in zip(contexts, answers, strict=True):
            enabled = self._fallback if isinstance(answer, Exception) else answer
            if not enabled:
                for session in groups[context]:
                    if not session.terminated.done():  # it may have ended during the evaluation
                        session.fail(StreamError(ErrorCode.STREAMING_DISABLED, _DISABLED))
                        closed += 1
        if closed:
            log.info("flag off: closing live sessions", extra={"sessions": closed})
        return closed

    async def _enabled(self, context: FlagContext) -> bool | Exception:
        """The gate's answer for `context`, or why there is none (a failure or the timeout)."""
        async with self._limit:
            try:
                async with asyncio.timeout(self._timeout_s):
                    return await self._gate.streaming_enabled(context)
            except TimeoutError:
                return TimeoutError(f"no answer within {self._timeout_s} s")
            except Exception as exc:  # one provider hiccup must not decide for the others
                log.debug("flag evaluation failed", exc_info=True)
                return exc

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), self._interval_s)
            self._changed.clear()
            if len(self._registry):
                try:
                    await self.sweep()
                except Exception:  # a provider hiccup must not kill the kill switch
                    log.exception("flag sweep failed")


def _context(session: StreamSession) -> FlagContext:
    return FlagContext(session.targeting_key, session.pipeline_id, session.tenant)
