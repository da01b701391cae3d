"""How the API is served: one uvicorn configuration for `framegate serve`, `framegate up` and the
images, so no entry point can drift back to uvicorn's defaults; and the drain on SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable, Coroutine
from types import FrameType
from typing import Any

import uvicorn
from fastapi import FastAPI

from api import heap
from api.streaming.protocol import max_message_bytes

logger = logging.getLogger("framegate.drain")


def server_config(
    app: FastAPI,
    *,
    host: str,
    port: int,
    log_level: str = "info",
    max_frame_bytes: int = 0,
) -> uvicorn.Config:
    """`max_frame_bytes` is STREAM_MAX_FRAME_SIZE_MB in bytes: the transport's message limit
    follows it (protocol.max_message_bytes; uvicorn's fixed 16 MiB refused larger frames with
    1009, never frame_too_large)."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level.lower(),
        # uvicorn[standard]'s C event loop and HTTP parser: explicit, as "auto" silently falls back.
        loop="uvloop",
        http="httptools",
        ws="websockets-sansio",  # uvicorn's maintained implementation (the legacy one warns)
        # JPEG frames do not compress: permessage-deflate (uvicorn's default) only inflates every
        # frame on the event loop (issue 10 measured 25.6 vs 41.4 results/s with it on and off).
        ws_per_message_deflate=False,
        ws_max_size=max_message_bytes(max_frame_bytes),
    )


class GracefulServer(uvicorn.Server):
    """uvicorn with the app's drain between the first SIGTERM (or SIGINT) and uvicorn's own
    shutdown, all within `timeout_s` (SHUTDOWN_TIMEOUT_S).

    uvicorn alone closes its listening socket at once (a probe sees a refused connection, not a
    draining pod), closes every WebSocket itself with 1012 (the frames at Triton go unanswered)
    and only then runs the lifespan's end. Here the socket stays open while `drain` runs
    (readiness answers 503 "draining", upgrades are refused with 1012, frames at Triton are
    answered, jobs requeued); then uvicorn shuts down with what is left of `timeout_s` for open
    HTTP requests. A second signal skips what is left of the drain. After a drain the process
    exits with status 0 (uvicorn would re-raise the signal: 143 in a shell, "Error" in
    Kubernetes)."""

    def __init__(
        self,
        config: uvicorn.Config,
        *,
        drain: Callable[[], Coroutine[Any, Any, None]],
        timeout_s: float,
        settle_heap: bool = False,
    ) -> None:
        super().__init__(config)
        self._drain = drain
        self._timeout_s = timeout_s
        # The process's own server (serve, up) freezes its startup heap (api/heap.py); a
        # server a test runs in its own process leaves that process's collector alone.
        self._settle_heap = settle_heap
        self._signalled: float | None = None  # time.monotonic() of the first signal
        self._draining: asyncio.Task[None] | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self._settle_heap and not self.should_exit:
            logger.debug("heap settled: %d objects frozen", heap.settle())

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._signalled is None:
            # A signal handler only notes it; the next tick starts the drain on the loop.
            self._signalled = time.monotonic()
            return
        self._bound_shutdown()
        super().handle_exit(sig, frame)

    async def on_tick(self, counter: int) -> bool:
        if self._signalled is not None:
            if self._draining is None:
                self._draining = asyncio.create_task(self._drain(), name="graceful-drain")
            if self.should_exit:  # a second signal: stop draining
                self._draining.cancel()
            elif self._draining.done() or self._left_s() <= 0:
                self._finish()
        return await super().on_tick(counter)

    def _finish(self) -> None:
        assert self._draining is not None
        if not self._draining.done():
            logger.error("drain still running at SHUTDOWN_TIMEOUT_S; shutting down anyway")
        elif not self._draining.cancelled() and (error := self._draining.exception()):
            logger.error("drain failed", exc_info=error)
        self._bound_shutdown()
        self.should_exit = True

    def _left_s(self) -> float:
        assert self._signalled is not None
        return self._signalled + self._timeout_s - time.monotonic()

    def _bound_shutdown(self) -> None:
        """uvicorn waits this long for open connections (its default: for ever)."""
        self.config.timeout_graceful_shutdown = max(0.0, self._left_s())  # type: ignore[assignment]
