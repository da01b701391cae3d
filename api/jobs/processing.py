"""Frames of a video file through inference, a chunk at a time: shared by the synchronous
endpoint and the job workers so both give the same per-frame results.

A chunk is decoded and JPEG-encoded in a thread, then all of its frames go to the micro-batcher at
once (bounded concurrency: one chunk in flight per request or job), so they share Triton batches.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Protocol

from api.inference.errors import InferenceUnavailable, PipelineFailure
from api.jobs.frames import FrameReader, SampledFrame

FrameResult = tuple[int, dict]  # (source frame number, result)


class Inference(Protocol):
    """What processing needs of api.inference.service.InferenceService."""

    async def infer(self, pipeline_id: str, frame: bytes) -> dict: ...


@asynccontextmanager
async def open_frames(path: Path, wanted: Iterable[int]) -> AsyncIterator[FrameReader]:
    reader = await asyncio.to_thread(FrameReader, path, wanted)
    try:
        yield reader
    finally:
        await asyncio.to_thread(reader.close)


async def infer_chunk(
    inference: Inference,
    pipeline_id: str,
    frames: Sequence[SampledFrame],
    *,
    failures_as_results: bool,
) -> list[FrameResult]:
    """One result per frame, in order. InferenceUnavailable is always raised (retryable);
    PipelineFailure becomes that frame's error object when `failures_as_results`, else raised."""

    async def one(frame: SampledFrame) -> dict:
        if frame.jpeg is None:
            assert frame.error is not None
            return frame.error
        return await inference.infer(pipeline_id, frame.jpeg)

    outcomes = await asyncio.gather(*(one(f) for f in frames), return_exceptions=True)
    if unavailable := next((o for o in outcomes if isinstance(o, InferenceUnavailable)), None):
        raise unavailable
    results: list[FrameResult] = []
    for frame, outcome in zip(frames, outcomes, strict=True):
        if isinstance(outcome, PipelineFailure) and failures_as_results:
            outcome = {"error": "pipeline_failure", "detail": f"frame {frame.index}: {outcome}"}
        if isinstance(outcome, BaseException):
            raise outcome
        results.append((frame.index, outcome))
    return results
