"""schemathesis against the HTTP API's own /openapi.json: inputs that fit the schema (positive)
and inputs that do not (negative) for every operation, jobs included (ROLE=all with a temporary
DuckDB file); no response may be a 5xx. Once in process with a fake inference boundary (fast),
once against the real API process and tritonserver, whose log must then hold no traceback.

schemathesis' pytest plugin (`from_fixture`) does not run on pytest 9 (it reads a removed node
attribute), so each operation's strategy is run by hypothesis here."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.schemas import BaseSchema

from api.core.config import Settings
from api.main import create_app
from api.synthetic.video import video_frames
from tests.fuzz import fuzz_settings
from tests.support.api_server import ApiServer, start_api, stop_all

# Every operation the app serves (a new route is fuzzed too, and this list must be told).
OPERATIONS = {
    "GET /health", "GET /ready", "GET /metrics", "GET /v1/pipelines",
    "GET /v1/pipelines/{pipeline_id}", "POST /v1/video/process", "POST /v1/video/submit",
    "GET /v1/video/status/{job_id}", "GET /v1/video/results/{job_id}", "GET /v1/video/jobs",
}  # fmt: skip


class FakeInference:
    async def infer(self, pipeline_id: str, frame: bytes, received: float | None = None) -> dict:
        return {"detections": []}

    async def readiness(self) -> dict[str, bool]:
        return {"triton": True}

    async def close(self) -> None:
        return None


def fuzz_operations(schema: BaseSchema, max_examples: int) -> set[str]:
    """Run every operation in both modes; returns the operations' labels. The first 5xx fails
    the test with schemathesis' report (status, body, a curl line to reproduce)."""
    labels = set()
    for result in schema.get_all_operations():
        operation = result.ok()
        labels.add(operation.label)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            # Schema-driven generation filters a lot (required multipart bodies, path strings).
            @fuzz_settings(max_examples, suppress_health_check=list(HealthCheck))
            @given(operation.as_strategy(generation_mode=mode))
            def no_server_error(case: schemathesis.Case) -> None:
                case.call_and_validate(checks=[not_a_server_error])

            try:
                no_server_error()
            except Unsatisfiable:
                # Nothing in the operation can be invalid (no parameters, or a free string).
                assert mode is GenerationMode.NEGATIVE, operation.label
    return labels


@pytest.fixture
def in_process_schema(tmp_path: Path) -> Iterator[BaseSchema]:
    settings = Settings(
        role="all",
        flag_provider="env",
        streaming_enabled=True,
        triton_url="127.0.0.1:1",
        data_dir=tmp_path,
        video_max_upload_mb=1,
    )
    app = create_app(settings, inference=FakeInference())
    try:
        yield schemathesis.openapi.from_asgi("/openapi.json", app)
    finally:
        asgi.shutdown_lifespans()  # schemathesis started the app's lifespan; end it (jobs, DuckDB)


@pytest.mark.triton  # a fuzz campaign (~10 s of generation): the slow layer, though in process
def test_no_operation_answers_5xx_in_process(in_process_schema: BaseSchema) -> None:
    assert fuzz_operations(in_process_schema, max_examples=50) == OPERATIONS


@pytest.fixture
def served(triton, tmp_path: Path) -> Iterator[ApiServer]:
    server = start_api(triton.grpc_url, tmp_path / "api", ROLE="all", VIDEO_MAX_UPLOAD_MB="1")
    try:
        yield server
    finally:
        stop_all([server])


@pytest.mark.triton
def test_no_operation_answers_5xx_from_the_real_api(served: ApiServer) -> None:
    schema = schemathesis.openapi.from_url(f"{served.http}/openapi.json")
    assert fuzz_operations(schema, max_examples=25) == OPERATIONS
    assert served.process.poll() is None
    log = served.log()
    assert "Traceback" not in log and '"level": "error"' not in log, log[-3000:]


@pytest.fixture(scope="module")
def small_videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Small real videos of each accepted container: the seeds of mutated uploads."""
    directory = tmp_path_factory.mktemp("videos")
    frames = [cv2.resize(f.image, (64, 36)) for f in video_frames(1004, 6)]
    videos = {}
    for suffix, fourcc in [(".mp4", "mp4v"), (".avi", "MJPG"), (".mov", "mp4v")]:
        path = directory / f"v{suffix}"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10.0, (64, 36))
        for image in frames:
            writer.write(image)
        writer.release()
        videos[suffix] = path.read_bytes()
    return videos


@pytest.fixture(scope="module")
def video_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = Settings(
        role="jobs", triton_url="127.0.0.1:1", data_dir=tmp_path_factory.mktemp("data")
    )
    with TestClient(create_app(settings, inference=FakeInference())) as client:
        yield client


@st.composite
def uploads(draw: st.DrawFn, videos: dict[str, bytes]) -> tuple[str, bytes]:
    """(filename, content): a real small video with bit flips, a cut or garbage, or random
    bytes, under an accepted suffix (any case) or not."""
    suffix = draw(st.sampled_from([*videos, ".MP4", ".Avi", ".mkv", ""]))
    if draw(st.booleans()):
        data = bytearray(videos.get(suffix.lower(), videos[".mp4"]))
        for position, value in draw(st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)))):
            data[min(int(position * len(data)), len(data) - 1)] = value
        data = data[: draw(st.integers(0, len(data)))] + draw(st.binary(max_size=64))
    else:
        data = bytearray(draw(st.binary(max_size=4096)))
    return f"clip{suffix}", bytes(data)


@fuzz_settings(60)
@given(data=st.data(), endpoint=st.sampled_from(["process", "submit"]))
def test_mutated_video_uploads_never_answer_5xx(
    video_client: TestClient, small_videos: dict[str, bytes], data: st.DataObject, endpoint: str
) -> None:
    """The upload path schemathesis cannot reach (it names its files .png): real containers,
    mutated. A file that cannot be read is a 400; one that can is processed or queued."""
    filename, content = data.draw(uploads(small_videos))
    response = video_client.post(
        f"/v1/video/{endpoint}?pipeline_id=yolo", files={"file": (filename, content)}
    )
    assert response.status_code in {200, 202, 400}, response.text
    assert "Traceback" not in response.text
