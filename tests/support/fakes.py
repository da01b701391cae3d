"""Fake boundaries shared by the tiny-app and session tests (no process, no Triton)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

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
