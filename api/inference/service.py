"""Inference as the rest of the gateway sees it: pipeline id + JPEG bytes in, result out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from api.core.config import Settings
from api.core.metrics import BATCH_SIZE, BATCH_WINDOW, TRITON_REQUEST_SECONDS
from api.inference.batcher import MicroBatcher
from api.inference.pipelines import PIPELINES, Pipeline


class Inference(Protocol):
    """The inference boundary as routes and the job system use it (faked in unit tests)."""

    async def infer(
        self, pipeline_id: str, frame: bytes, received: float | None = None
    ) -> dict: ...

    async def readiness(self) -> dict[str, bool]: ...

    async def close(self) -> None: ...


class TritonBackend(Protocol):
    """What the service needs of Triton: one server or a replica set."""

    async def infer_frames(self, model: str, frames: Sequence[bytes]) -> list[dict]: ...

    async def is_ready(self) -> bool: ...

    async def models_ready(self, models: Sequence[str]) -> dict[str, bool]: ...

    async def close(self) -> None: ...


def _latency_budget_s(settings: Settings) -> float | None:
    """The budget protects live frames (the rule lives with the settings that check it)."""
    return settings.live_latency_budget_s


class InferenceService:
    def __init__(self, client: TritonBackend, settings: Settings) -> None:
        self.client = client
        self._batchers = {p.id: self._batcher(p, settings) for p in PIPELINES.values()}

    def _batcher(self, pipeline: Pipeline, settings: Settings) -> MicroBatcher:
        # Bound once: `labels()` takes a lock and a dict lookup, and this runs for every batch.
        sizes, seconds_at_triton = (
            BATCH_SIZE.labels(pipeline.id),
            TRITON_REQUEST_SECONDS.labels(pipeline.id),
        )
        window = BATCH_WINDOW.labels(pipeline.id)

        def observe(size: int, seconds: float) -> None:
            sizes.observe(size)
            seconds_at_triton.observe(seconds)
            budget = self._batchers[pipeline.id].budget
            if budget is not None:
                window.set(budget.window)

        async def infer(frames: list[bytes]) -> list[dict]:
            return await self.client.infer_frames(pipeline.triton_model, frames)

        return MicroBatcher(
            infer,
            # The setting may only lower the model's own limit (a larger batch would be refused).
            max_size=min(settings.batch_max_size, pipeline.max_batch_size),
            max_delay_s=settings.batch_max_delay_ms / 1000,
            max_inflight=settings.batch_max_inflight,
            observer=observe,
            latency_budget_s=_latency_budget_s(settings),
            handover=settings.batch_handover,
        )

    async def infer(self, pipeline_id: str, frame: bytes, received: float | None = None) -> dict:
        """`received` (time.monotonic() of arrival) marks a live frame, held to the latency
        budget: it may raise FrameExpired instead of being sent. Video jobs pass nothing."""
        return await self._batchers[pipeline_id].infer(frame, received)

    async def readiness(self) -> dict[str, bool]:
        """Server readiness plus every model of every pipeline."""
        if not await self.client.is_ready():
            return {"triton": False}
        models = sorted({m for p in PIPELINES.values() for m in p.models})
        return {"triton": True, **await self.client.models_ready(models)}

    async def close(self) -> None:
        for batcher in self._batchers.values():
            await batcher.close()
        await self.client.close()
