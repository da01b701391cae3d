"""Triton's readiness as this process last saw it, kept current in the background.

The readiness probe no longer asks Triton (a Triton restart must not take every gateway out of
its Service, issue 12), so this does: a check every `interval_s` and on every `/ready` keeps the
`framegate_triton_ready` gauge and what `/ready?scope=pod` reports up to date.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Protocol

from api.core import metrics

log = logging.getLogger("framegate.inference")

WATCH_INTERVAL_S = 5.0


class ReadinessSource(Protocol):
    async def readiness(self) -> dict[str, bool]: ...


class TritonWatch:
    def __init__(self, source: ReadinessSource, interval_s: float = WATCH_INTERVAL_S) -> None:
        self._source = source
        self._interval_s = interval_s
        self.last: dict[str, bool] | None = None  # None: not checked yet
        self.checked_at: float | None = None  # time.time() of the last check
        self._task: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool | None:
        return None if self.last is None else all(self.last.values())

    async def check(self) -> dict[str, bool]:
        """Ask Triton now (server, then every pipeline's models) and record the answer."""
        try:
            checks = await self._source.readiness()
        except Exception as exc:  # an unexpected client error means "not ready", never a 500
            log.warning("Triton readiness check failed: %r", exc)
            checks = {"triton": False}
        self.last, self.checked_at = checks, time.time()
        metrics.TRITON_READY.set(1 if all(checks.values()) else 0)
        return checks

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="triton-watch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await self.check()
            await asyncio.sleep(self._interval_s)  # the watch's period, not synchronisation
