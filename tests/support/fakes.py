"""Fake boundaries shared by the tiny-app and session tests (no process, no Triton)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from api.flags.context import FlagContext

JPEG = b"\xff\xd8" + b"\x00" * 64 + b"\xff\xd9"
RESULT = {"detections": []}


class ScriptedInference:
    """Answers each frame with the next outcome of `script` (an exception is raised)."""

    def __init__(self, script: Callable[[int], dict | Exception]) -> None:
        self.script = script
        self.calls = 0

    async def infer(self, pipeline_id: str, frame: bytes, received: float | None = None) -> dict:
        outcome = self.script(self.calls)
        self.calls += 1
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def readiness(self) -> dict[str, bool]:
        return {"triton": True}

    async def close(self) -> None:
        return None


class Harness:
    """A session's infer and send: each frame waits until the test finishes it."""

    def __init__(self) -> None:
        self.sent: list[dict] = []
        self.calls: list[bytes] = []
        self.pending: list[asyncio.Future[dict]] = []

    async def infer(self, frame: bytes, received: float) -> dict:
        self.calls.append(frame)
        future: asyncio.Future[dict] = asyncio.get_running_loop().create_future()
        self.pending.append(future)
        return await future

    async def send(self, message: str) -> None:
        self.sent.append(json.loads(message))

    def finish(self, i: int, error: Exception | None = None) -> None:
        if error:
            self.pending[i].set_exception(error)
        else:
            self.pending[i].set_result({"detections": [], "call": i})


async def settle() -> None:
    """Let every ready task run (the session's frame tasks and replies)."""
    for _ in range(10):
        await asyncio.sleep(0)


class FakeFlags:
    """The `video-streaming` flag: `enabled` (or `failure`, raised) for every context."""

    def __init__(self, enabled: bool = True, failure: Exception | None = None) -> None:
        self.enabled = enabled
        self.failure = failure
        self.started = self.stopped = False
        self.subscribers: list[Callable[[], None]] = []
        self.asked: list[FlagContext] = []

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    async def streaming_enabled(self, context: FlagContext) -> bool:
        self.asked.append(context)
        if self.failure is not None:
            raise self.failure
        return self.enabled

    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None]:
        self.subscribers.append(callback)
        return lambda: self.subscribers.remove(callback)

    def status(self) -> dict[str, Any]:
        return {"state": "ready", "provider": "fake"}
