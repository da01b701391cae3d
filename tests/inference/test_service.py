"""InferenceService with a fake TritonBackend (no Triton): frames go to their pipeline's Triton
model in batches no larger than the pipeline (or BATCH_MAX_SIZE) allows, readiness is the server
plus every pipeline's models, and close shuts the batchers and the backend."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
from prometheus_client import REGISTRY

from api.core.config import Settings
from api.inference.errors import BatcherClosed
from api.inference.pipelines import PIPELINES
from api.inference.service import InferenceService

WAIT_S = 10.0  # deadline for conditions that are not latency assertions
ALL_MODELS = sorted({m for p in PIPELINES.values() for m in p.models})


class FakeBackend:
    """Answers each frame with where it went; records every batch and readiness question."""

    def __init__(self, server_ready: bool = True, not_ready: frozenset[str] = frozenset()) -> None:
        self.server_ready = server_ready
        self.not_ready = not_ready
        self.batches: list[tuple[str, list[bytes]]] = []
        self.asked_models: list[list[str]] = []
        self.closed = 0

    async def infer_frames(self, model: str, frames: Sequence[bytes]) -> list[dict]:
        self.batches.append((model, list(frames)))
        return [{"model": model, "frame": frame.decode()} for frame in frames]

    async def is_ready(self) -> bool:
        return self.server_ready

    async def models_ready(self, models: Sequence[str]) -> dict[str, bool]:
        self.asked_models.append(list(models))
        return {m: m not in self.not_ready for m in models}

    async def close(self) -> None:
        self.closed += 1


def settings(**overrides: Any) -> Settings:
    # No latency budget: batches are bounded by the size limits alone.
    values: dict[str, Any] = {"stream_latency_budget_ms": 0, "batch_max_delay_ms": 1, **overrides}
    return Settings(**values)


async def infer_all(service: InferenceService, pipeline_id: str, count: int) -> list[dict]:
    frames = [f"{pipeline_id}-{i}".encode() for i in range(count)]
    return await asyncio.wait_for(
        asyncio.gather(*(service.infer(pipeline_id, f) for f in frames)), WAIT_S
    )


@pytest.mark.parametrize("pipeline_id", sorted(PIPELINES))
async def test_frames_go_to_their_pipelines_triton_model(pipeline_id: str) -> None:
    backend = FakeBackend()
    service = InferenceService(backend, settings())
    try:
        results = await infer_all(service, pipeline_id, 3)
    finally:
        await service.close()
    model = PIPELINES[pipeline_id].triton_model
    assert results == [{"model": model, "frame": f"{pipeline_id}-{i}"} for i in range(3)]
    assert {m for m, _ in backend.batches} == {model}


async def test_batches_are_capped_at_batch_max_size() -> None:
    backend = FakeBackend()
    service = InferenceService(backend, settings(batch_max_size=4, batch_max_inflight=1))
    try:
        await infer_all(service, "yolo", 10)
    finally:
        await service.close()
    assert [len(frames) for _, frames in backend.batches] == [4, 4, 2]


async def test_a_batch_never_exceeds_the_pipelines_own_limit() -> None:
    # Settings refuse a BATCH_MAX_SIZE over any pipeline's limit; should one get through anyway
    # (model_copy does not validate), the model's max_batch_size still bounds every request.
    unchecked = settings(batch_max_inflight=1).model_copy(update={"batch_max_size": 1000})
    limit = PIPELINES["ocr"].max_batch_size
    backend = FakeBackend()
    service = InferenceService(backend, unchecked)
    try:
        await infer_all(service, "ocr", 2 * limit + 1)
    finally:
        await service.close()
    assert [len(frames) for _, frames in backend.batches] == [limit, limit, 1]


async def test_each_batch_is_observed_under_its_pipeline() -> None:
    def batches_seen() -> float:
        labels = {"pipeline": "yolo_ocr"}
        return REGISTRY.get_sample_value("framegate_batch_size_count", labels) or 0.0

    before = batches_seen()
    backend = FakeBackend()
    service = InferenceService(backend, settings(batch_max_size=2, batch_max_inflight=1))
    try:
        await infer_all(service, "yolo_ocr", 4)
    finally:
        await service.close()
    assert batches_seen() - before == len(backend.batches) == 2


async def test_readiness_is_the_server_and_every_model_of_every_pipeline() -> None:
    backend = FakeBackend()
    service = InferenceService(backend, settings())
    try:
        checks = await service.readiness()
    finally:
        await service.close()
    assert checks == {"triton": True, **{m: True for m in ALL_MODELS}}
    assert backend.asked_models == [ALL_MODELS]  # each model once, shared stages included


async def test_a_model_that_is_not_ready_shows_in_readiness() -> None:
    backend = FakeBackend(not_ready=frozenset({"ocr_rec"}))
    service = InferenceService(backend, settings())
    try:
        checks = await service.readiness()
    finally:
        await service.close()
    assert checks["triton"] is True and checks["ocr_rec"] is False
    assert [m for m, ready in checks.items() if not ready] == ["ocr_rec"]


async def test_a_server_that_is_not_ready_is_not_asked_about_models() -> None:
    backend = FakeBackend(server_ready=False)
    service = InferenceService(backend, settings())
    try:
        checks = await service.readiness()
    finally:
        await service.close()
    assert checks == {"triton": False}
    assert backend.asked_models == []


async def test_close_shuts_every_batcher_and_the_backend_once() -> None:
    backend = FakeBackend()
    service = InferenceService(backend, settings())
    await service.close()

    assert backend.closed == 1
    for pipeline_id in PIPELINES:
        with pytest.raises(BatcherClosed):
            await service.infer(pipeline_id, b"late")
    assert backend.batches == []
