"""`StreamingService`: what live streaming holds for the process's lifetime — the flag that gates
it, the live sessions and the kill switch that closes them when the flag turns off — started and
stopped by the lifespan, drained on shutdown."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from api.core.config import Settings
from api.flags.context import FlagContext
from api.flags.service import FlagService
from api.streaming.killswitch import KillSwitch
from api.streaming.registry import SessionRegistry


class Flags(Protocol):
    """The `video-streaming` flag as the gateway uses it (FlagService; a fake in tests)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def streaming_enabled(self, context: FlagContext) -> bool: ...

    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None]: ...

    def status(self) -> dict[str, Any]: ...


class StreamingService:
    def __init__(self, settings: Settings, flags: Flags | None = None) -> None:
        # Injected flags belong to the caller (a test's fake): not started or stopped here.
        self._owns_flags = flags is None
        self.flags: Flags = flags if flags is not None else FlagService(settings)
        self.sessions = SessionRegistry(settings.stream_max_sessions)
        # An evaluation with no answer counts as the provider having none: STREAMING_ENABLED.
        self.killswitch = KillSwitch(self.flags, self.sessions, fallback=settings.streaming_enabled)
        self._unsubscribe: Callable[[], None] | None = None

    async def start(self) -> None:
        if self._owns_flags:
            await self.flags.start()
        self._unsubscribe = self.flags.subscribe(self.killswitch.notify)
        self.killswitch.start()

    async def drain(self, answer_by: float, closed_by: float) -> int:
        """Every session answers the frames it admitted, then closes with 1012 (see
        SessionRegistry.drain); returns how many were still open at `closed_by`."""
        return await self.sessions.drain(answer_by, closed_by)

    async def stop(self) -> None:
        await self.killswitch.stop()
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self._owns_flags:
            await self.flags.stop()
