"""Live sessions of this process: the STREAM_MAX_SESSIONS limit, metrics, the kill switch."""

from __future__ import annotations

from collections.abc import Iterator

from api.core import metrics
from api.streaming.session import StreamSession, Termination


class SessionRegistry:
    def __init__(self, max_sessions: int) -> None:
        self.max_sessions = max_sessions
        self._sessions: dict[str, StreamSession] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def __iter__(self) -> Iterator[StreamSession]:
        return iter(list(self._sessions.values()))

    def try_add(self, session: StreamSession) -> bool:
        """Check and insert with no await in between, so concurrent handshakes can't overshoot."""
        if len(self._sessions) >= self.max_sessions:
            return False
        self._sessions[session.session_id] = session
        metrics.STREAM_SESSIONS_ACTIVE.set(len(self._sessions))
        return True

    def remove(self, session: StreamSession) -> None:
        self._sessions.pop(session.session_id, None)
        metrics.STREAM_SESSIONS_ACTIVE.set(len(self._sessions))

    def terminate_all(self, termination: Termination) -> None:
        for session in self:
            session.terminate(termination)
