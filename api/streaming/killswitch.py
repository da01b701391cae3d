"""Closes live sessions when the `video-streaming` flag turns off for them.

Flag providers announce changes on their own threads, and some (a mounted file) only by polling,
so live sessions are re-evaluated on every change event and at least every `interval_s`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

from api.flags.context import FlagContext
from api.streaming.protocol import ErrorCode, StreamError
from api.streaming.registry import SessionRegistry

log = logging.getLogger("framegate.stream")


class StreamingGate(Protocol):
    async def streaming_enabled(self, context: FlagContext) -> bool: ...


class KillSwitch:
    def __init__(
        self, gate: StreamingGate, registry: SessionRegistry, interval_s: float = 0.5
    ) -> None:
        self._gate = gate
        self._registry = registry
        self._interval_s = interval_s
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def notify(self) -> None:
        """Flag change announced (call on the loop thread)."""
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
        closed = 0
        for session in self._registry:
            context = FlagContext(session.targeting_key, session.pipeline_id, session.tenant)
            if not await self._gate.streaming_enabled(context):
                session.fail(StreamError(ErrorCode.STREAMING_DISABLED, "streaming was disabled"))
                closed += 1
        if closed:
            log.info("flag off: closing live sessions", extra={"sessions": closed})
        return closed

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
