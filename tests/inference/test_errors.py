"""api/inference/errors.py: the per-frame error codes are the ones every producer writes (the
pipeline's JPEG decoding, the job frame reader, the session, the job chunks), and each consumer
tells the inference failures apart the same way: InferenceUnavailable is retryable and never
the frame's fault, PipelineFailure is Triton failing that frame."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response

from api.core.config import Settings
from api.inference.errors import (
    FrameErrorCode,
    FrameExpired,
    InferenceUnavailable,
    PipelineFailure,
)
from api.jobs.frames import FrameReader, SampledFrame
from api.jobs.processing import infer_chunk
from api.main import create_app
from api.streaming.protocol import ErrorCode
from api.streaming.session import StreamSession
from api.synthetic.video import video_frames, write_video
from api.vision.jpeg import FrameError, decode_jpeg
from tests.support.fakes import JPEG, Harness, ScriptedInference, settle

# Framing intact (FF D8 ... FF D9), but no frame header: what passes the gateway's cheap check.
HEADERLESS_JPEG = b"\xff\xd8\xff\xda\x00\x02" + b"\x00" * 32 + b"\xff\xd9"


def test_an_undecodable_jpeg_gets_the_corrupt_jpeg_code() -> None:
    with pytest.raises(FrameError) as failed:
        decode_jpeg(HEADERLESS_JPEG)
    assert failed.value.as_result()["error"] == FrameErrorCode.CORRUPT_JPEG


def test_a_frame_missing_from_a_video_gets_the_missing_frame_code(tmp_path: Path) -> None:
    video = write_video(tmp_path / "two.mp4", video_frames(7, 2, 160, 96))
    reader = FrameReader(video, [0, 5])
    try:
        first, missing = reader.read(2)
    finally:
        reader.close()
    assert first.error is None and first.jpeg is not None
    assert missing.jpeg is None and missing.error is not None
    assert missing.error["error"] == FrameErrorCode.MISSING_FRAME


class FailingInference:
    def __init__(self, failure: Exception) -> None:
        self.failure = failure

    async def infer(self, pipeline_id: str, frame: bytes) -> dict:
        raise self.failure


async def test_a_job_frame_triton_failed_is_stored_with_the_pipeline_failure_code() -> None:
    frames = [SampledFrame(3, b"jpeg")]
    inference = FailingInference(PipelineFailure("model crashed"))

    ((index, result),) = await infer_chunk(inference, "yolo", frames, failures_as_results=True)

    assert index == 3
    assert result == {"error": FrameErrorCode.PIPELINE_FAILURE, "detail": "frame 3: model crashed"}


async def test_a_job_chunk_never_stores_unavailable_inference_as_a_frame_error() -> None:
    # Retryable: the worker waits and retries the chunk instead of storing a result.
    with pytest.raises(InferenceUnavailable):
        await infer_chunk(
            FailingInference(InferenceUnavailable("down")),
            "yolo",
            [SampledFrame(0, b"jpeg")],
            failures_as_results=True,
        )


@pytest.mark.parametrize(
    ("failure", "reply"),
    [
        (PipelineFailure("model crashed"), "error"),
        (InferenceUnavailable("triton down"), "dropped"),
        (FrameExpired("late"), "dropped"),
    ],
)
async def test_a_live_frame_that_fails_is_answered_and_the_session_goes_on(
    failure: Exception, reply: str
) -> None:
    harness = Harness()
    session = StreamSession("yolo", harness.infer, harness.send)
    try:
        await session.offer(JPEG)
        await settle()
        harness.finish(0, failure)
        await settle()

        (message,) = [m for m in harness.sent if "frame_index" in m]  # not slow_down
        if reply == "error":
            assert message["frame_index"] == 0
            assert message["result"]["error"] == FrameErrorCode.PIPELINE_FAILURE
            assert message["result"]["detail"] == "pipeline failed: model crashed"
        else:
            assert message == {"frame_index": 0, "dropped": True}
        assert not session.terminated.done()
    finally:
        await session.aclose()


async def test_any_other_error_ends_the_session_with_internal_error() -> None:
    harness = Harness()
    session = StreamSession("yolo", harness.infer, harness.send)
    try:
        await session.offer(JPEG)
        await settle()
        harness.finish(0, KeyError("a bug"))
        await settle()

        error = session.terminated.result().error
        assert error is not None and error.code is ErrorCode.INTERNAL_ERROR
        assert "a bug" not in error.detail  # never the exception's text
    finally:
        await session.aclose()


@pytest.fixture
def process_video(tmp_path: Path) -> Iterator[Callable[[Exception], Response]]:
    """POST a small video to a tiny jobs app (real DuckDB under tmp_path) whose inference
    raises `failure` for every frame."""
    video = write_video(tmp_path / "clip.mp4", video_frames(8, 2, 160, 96))
    clients: list[TestClient] = []

    def post(failure: Exception) -> Response:
        settings = Settings(role="jobs", data_dir=tmp_path / "data", triton_url="127.0.0.1:1")
        client = TestClient(create_app(settings, inference=ScriptedInference(lambda _: failure)))
        clients.append(client)
        client.__enter__()
        return client.post(
            "/v1/video/process",
            params={"pipeline_id": "yolo"},
            files={"file": ("clip.mp4", video.read_bytes(), "video/mp4")},
        )

    yield post
    for client in clients:
        client.__exit__(None, None, None)


@pytest.mark.parametrize(
    ("failure", "status", "detail"),
    [
        (InferenceUnavailable("triton down"), 503, "inference unavailable: triton down"),
        (PipelineFailure("model crashed"), 502, "pipeline failed: model crashed"),
    ],
)
def test_a_synchronous_video_request_maps_each_failure_to_its_status(
    process_video: Callable[[Exception], Response], failure: Exception, status: int, detail: str
) -> None:
    response = process_video(failure)

    assert (response.status_code, response.json()) == (status, {"detail": detail})
