"""infer_chunk's error rules, with a stand-in for the inference service (no Triton)."""

from __future__ import annotations

import pytest

from api.inference.errors import FrameErrorCode, InferenceUnavailable, PipelineFailure
from api.jobs.frames import SampledFrame
from api.jobs.processing import infer_chunk


class FakeInference:
    def __init__(self, failure: Exception | None = None) -> None:
        self.failure = failure
        self.frames: list[bytes] = []

    async def infer(self, pipeline_id: str, frame: bytes) -> dict:
        self.frames.append(frame)
        if self.failure is not None and frame == b"bad":
            raise self.failure
        return {"pipeline": pipeline_id, "frame": frame.decode()}


FRAMES = [
    SampledFrame(0, b"a"),
    SampledFrame.failed(2, FrameErrorCode.CORRUPT_FRAME, "undecodable"),
    SampledFrame(4, b"bad"),
]


async def test_results_in_frame_order_and_corrupt_frames_skip_inference() -> None:
    inference = FakeInference()
    results = await infer_chunk(inference, "yolo", FRAMES, failures_as_results=False)
    assert results == [
        (0, {"pipeline": "yolo", "frame": "a"}),
        (2, {"error": "corrupt_frame", "detail": "frame 2: undecodable"}),
        (4, {"pipeline": "yolo", "frame": "bad"}),
    ]
    assert inference.frames == [b"a", b"bad"]


async def test_pipeline_failure_becomes_the_frames_error_for_jobs() -> None:
    inference = FakeInference(PipelineFailure("boom"))
    results = await infer_chunk(inference, "yolo", FRAMES, failures_as_results=True)
    assert results[2] == (4, {"error": "pipeline_failure", "detail": "frame 4: boom"})
    assert results[0] == (0, {"pipeline": "yolo", "frame": "a"})


async def test_pipeline_failure_is_raised_for_requests() -> None:
    with pytest.raises(PipelineFailure, match="boom"):
        await infer_chunk(
            FakeInference(PipelineFailure("boom")), "yolo", FRAMES, failures_as_results=False
        )


@pytest.mark.parametrize("failures_as_results", [True, False])
async def test_inference_unavailable_is_always_raised(failures_as_results: bool) -> None:
    with pytest.raises(InferenceUnavailable):
        await infer_chunk(
            FakeInference(InferenceUnavailable("down")),
            "yolo",
            FRAMES,
            failures_as_results=failures_as_results,
        )
