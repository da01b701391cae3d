"""Live sessions of this process: the STREAM_MAX_SESSIONS limit, metrics, the kill switch."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator

from api.core import metrics
from api.streaming import protocol
from api.streaming.session import StreamSession, Termination

# A graceful drain ends every session like this: 1012, which clients retry (on another replica).
SHUTTING_DOWN = Termination(protocol.WS_1012_SERVICE_RESTART, protocol.SHUTDOWN_REASON)


class SessionRegistry:
    def __init__(self, max_sessions: int) -> None:
        self.max_sessions = max_sessions
        self._sessions: dict[str, StreamSession] = {}
        self._empty = asyncio.Event()
        self._empty.set()

    def __len__(self) -> int:
        return len(self._sessions)

    def __iter__(self) -> Iterator[StreamSession]:
        return iter(list(self._sessions.values()))

    def try_add(self, session: StreamSession) -> bool:
        """Check and insert with no await in between, so concurrent handshakes can't overshoot."""
        if len(self._sessions) >= self.max_sessions:
            return False
        self._sessions[session.session_id] = session
        self._empty.clear()
        metrics.STREAM_SESSIONS_ACTIVE.set(len(self._sessions))
        return True

    def remove(self, session: StreamSession) -> None:
        self._sessions.pop(session.session_id, None)
        if not self._sessions:
            self._empty.set()
        metrics.STREAM_SESSIONS_ACTIVE.set(len(self._sessions))

    def terminate_all(self, termination: Termination) -> None:
        for session in self:
            session.terminate(termination)

    async def drain(self, answer_by: float, closed_by: float) -> int:
        """Graceful drain: every session answers the frames it admitted (until `answer_by`,
        time.monotonic()), then closes with 1012. Returns once the router has let them all go,
        or at `closed_by` with how many are left (uvicorn's shutdown closes those, also 1012)."""
        sessions = list(self)
        await asyncio.gather(*(s.finish(answer_by - time.monotonic()) for s in sessions))
        self.terminate_all(SHUTTING_DOWN)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._empty.wait(), max(0.0, closed_by - time.monotonic()))
        return len(self)
