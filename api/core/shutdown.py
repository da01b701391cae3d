"""The graceful drain of one process: when it began and the deadlines its steps keep.

Begun once: on SIGTERM by the server (api/core/server.py), or at the latest when the lifespan
ends. Readiness reads it (a draining pod is unready), so does the WebSocket handshake (refused
with 1012). Everything after the signal fits in SHUTDOWN_TIMEOUT_S: answering the frames at
Triton gets most of it, closing the sessions part of the rest, and uvicorn's own shutdown (open
HTTP requests, the lifespan) what remains.
"""

from __future__ import annotations

import time

from api.core import metrics

# Kept back from answering frames for closing sockets, uvicorn's shutdown and the lifespan (they
# normally take milliseconds): at most this, and at most a quarter of the timeout.
MAX_RESERVE_S = 2.0
RESERVE_SHARE = 0.25


class Drain:
    def __init__(self, timeout_s: float) -> None:
        if timeout_s <= 0:
            raise ValueError(f"Drain: timeout_s must be > 0, got {timeout_s}")
        self.timeout_s = timeout_s
        self.started: float | None = None  # time.monotonic()
        metrics.DRAINING.set(0)

    @property
    def draining(self) -> bool:
        return self.started is not None

    def begin(self) -> bool:
        """Start draining now; False when it had already begun."""
        if self.started is not None:
            return False
        self.started = time.monotonic()
        metrics.DRAINING.set(1)
        return True

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self._at(0.0)

    @property
    def reserve_s(self) -> float:
        return min(MAX_RESERVE_S, self.timeout_s * RESERVE_SHARE)

    @property
    def answer_by(self) -> float:
        """Frames admitted before the drain get their answer until then."""
        return self._at(self.timeout_s - self.reserve_s)

    @property
    def closed_by(self) -> float:
        """Sessions and jobs are let go of until then."""
        return self._at(self.timeout_s - self.reserve_s / 2)

    @property
    def deadline(self) -> float:
        return self._at(self.timeout_s)

    def _at(self, offset_s: float) -> float:
        if self.started is None:
            raise RuntimeError("Drain: expected a drain in progress, none has begun")
        return self.started + offset_s
