"""/v1/video against a real API subprocess and the embedded Triton: every status code, the
synchronous and job paths giving the same results, and the accuracy bar on a synthetic video."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from api.synthetic.scoring import Score
from api.synthetic.video import load_truth
from tests.jobs.client import results, status, submit, upload, wait_completed
from tests.jobs.conftest import FAST_JOBS
from tests.support.api_server import ApiServer, assert_loop_never_blocked, start_api

pytestmark = (
    pytest.mark.triton
)  # the job API served by a real API process against the shared Triton

LIMIT_MB = 3
ENDPOINTS = ["process", "submit"]


@pytest.fixture(scope="module")
def api(triton, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    server = start_api(
        triton.grpc_url,
        tmp_path_factory.mktemp("video_api"),
        VIDEO_MAX_UPLOAD_MB=str(LIMIT_MB),
        **FAST_JOBS,
    )
    try:
        yield server
        assert_loop_never_blocked(server)  # uploads, decoding and DuckDB stay off the loop
    finally:
        server.stop()


def leftover_files(server: ApiServer) -> list[Path]:
    return [p for d in ("tmp", "uploads") for p in (server.data_dir / d).glob("*")]


def assert_error(response: httpx.Response, code: int, detail: str) -> None:
    assert response.status_code == code, response.text
    assert response.json() == {"detail": detail}


def assert_same_result(a: object, b: object) -> None:
    """Identical structure and strings; numbers equal up to batch-composition float noise."""
    if isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys()
        for key in a:
            assert_same_result(a[key], b[key])
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_same_result(x, y)
    elif isinstance(a, float | int) and isinstance(b, float | int):
        assert math.isclose(a, b, rel_tol=1e-3, abs_tol=0.2), (a, b)
    else:
        assert a == b


# -- 400 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_text_file_is_400(api: ApiServer, tmp_path: Path, endpoint: str) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    assert_error(
        upload(api, endpoint, path),
        400,
        "unsupported file type '.txt'; expected .avi, .mov, .mp4",
    )


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_text_named_mp4_is_400(api: ApiServer, tmp_path: Path, endpoint: str) -> None:
    path = tmp_path / "notes.mp4"
    path.write_text("this is text, not a video\n" * 100)
    assert_error(upload(api, endpoint, path), 400, "file is not a readable video")
    assert leftover_files(api) == []


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_truncated_mp4_is_400(
    api: ApiServer, tmp_path: Path, short_video: Path, endpoint: str
) -> None:
    data = short_video.read_bytes()
    path = tmp_path / "truncated.mp4"
    path.write_bytes(data[: len(data) // 2])
    assert_error(upload(api, endpoint, path), 400, "file is not a readable video")


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_zero_frame_videos_are_400(
    api: ApiServer, zero_frame_mp4: Path, zero_frame_avi: Path, endpoint: str
) -> None:
    assert_error(upload(api, endpoint, zero_frame_mp4), 400, "file is not a readable video")
    assert_error(upload(api, endpoint, zero_frame_avi), 400, "video has no decodable frames")
    assert leftover_files(api) == []


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_empty_file_is_400(api: ApiServer, tmp_path: Path, endpoint: str) -> None:
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    assert_error(upload(api, endpoint, path), 400, "uploaded file is empty")


def test_real_video_with_wrong_extension_is_400(api: ApiServer, short_video: Path) -> None:
    assert_error(
        upload(api, "process", short_video, name="clip.mkv"),
        400,
        "unsupported file type '.mkv'; expected .avi, .mov, .mp4",
    )


# -- 404 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_unknown_pipeline_is_404(api: ApiServer, short_video: Path, endpoint: str) -> None:
    assert_error(
        upload(api, endpoint, short_video, pipeline_id="nope"),
        404,
        "unknown pipeline 'nope'; available: ocr, yolo, yolo_ocr",
    )


@pytest.mark.parametrize("what", ["status", "results"])
def test_unknown_job_is_404(api: ApiServer, what: str) -> None:
    response = httpx.get(f"{api.http}/v1/video/{what}/0123abc", timeout=10)
    assert_error(response, 404, "unknown job '0123abc'")


# -- 413 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_oversize_upload_is_413(api: ApiServer, tmp_path: Path, endpoint: str) -> None:
    path = tmp_path / "big.mp4"
    path.write_bytes(os.urandom((LIMIT_MB + 1) * 2**20))
    assert_error(upload(api, endpoint, path), 413, f"upload exceeds the limit of {LIMIT_MB} MB")
    assert leftover_files(api) == []


def test_oversize_chunked_upload_stops_at_the_limit(api: ApiServer) -> None:
    """No Content-Length: the limit is enforced while streaming the body to disk."""
    block = os.urandom(2**16)

    def body() -> Iterator[bytes]:
        yield b'--XB\r\nContent-Disposition: form-data; name="file"; filename="big.mp4"\r\n\r\n'
        for _ in range(16 * (LIMIT_MB + 2)):
            yield block
        yield b"\r\n--XB--\r\n"

    response = httpx.post(
        f"{api.http}/v1/video/process",
        content=body(),
        headers={"content-type": "multipart/form-data; boundary=XB"},
        timeout=60,
    )
    assert_error(response, 413, f"upload exceeds the limit of {LIMIT_MB} MB")
    assert leftover_files(api) == []


# -- 422 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [{"frame_stride": 0}, {"frame_stride": "two"}, {"max_frames": 0}, {"max_frames": -3}],
)
@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_bad_parameters_are_422(
    api: ApiServer, short_video: Path, endpoint: str, params: dict
) -> None:
    response = upload(api, endpoint, short_video, **params)
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert error["loc"] == ["query", next(iter(params))]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_missing_file_is_422(api: ApiServer, endpoint: str) -> None:
    response = httpx.post(
        f"{api.http}/v1/video/{endpoint}", files={"other": ("a.mp4", b"x")}, timeout=10
    )
    assert_error(response, 422, "multipart field 'file' (a video file) is required")


def test_non_multipart_body_is_422(api: ApiServer) -> None:
    response = httpx.post(f"{api.http}/v1/video/process", json={"file": "x"}, timeout=10)
    assert_error(response, 422, "expected a multipart/form-data body with a 'file' field")


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 501}, {"offset": -1}, {"status": "x"}])
def test_bad_list_parameters_are_422(api: ApiServer, params: dict) -> None:
    response = httpx.get(f"{api.http}/v1/video/jobs", params=params, timeout=10)
    assert response.status_code == 422, response.text


# -- 409 and the happy paths ----------------------------------------------------------------------


def test_results_before_completion_are_409(api: ApiServer, long_video: Path) -> None:
    job_id = submit(api, long_video, pipeline_id="yolo")
    response = httpx.get(f"{api.http}/v1/video/results/{job_id}", timeout=10)
    assert response.status_code == 409, response.text
    detail = response.json()["detail"]
    assert detail.startswith(f"job '{job_id}' is ") and detail.endswith("/60 frames)")
    wait_completed(api, [job_id])


def test_process_samples_source_frame_numbers(api: ApiServer, short_video: Path) -> None:
    response = upload(api, "process", short_video, pipeline_id="yolo", frame_stride=3, max_frames=4)
    assert response.status_code == 200, response.text
    body = response.json()
    assert list(body) == ["results"]
    assert [r["frame_index"] for r in body["results"]] == [0, 3, 6, 9]
    assert all(list(r) == ["frame_index", "result"] for r in body["results"])
    assert all("detections" in r["result"] for r in body["results"])
    assert leftover_files(api) == []


def test_job_matches_process_and_meets_accuracy_bar(api: ApiServer, accuracy_video: Path) -> None:
    job_id = submit(api, accuracy_video)  # default pipeline: yolo_ocr
    direct = upload(api, "process", accuracy_video)
    assert direct.status_code == 200, direct.text
    wait_completed(api, [job_id])
    stored = results(api, job_id)
    state = status(api, job_id)
    assert state["pipeline_id"] == "yolo_ocr" and state["error"] is None
    assert state["progress"] == {"frames_done": 40, "frames_total": 40}
    assert state["created_at"] <= state["updated_at"]
    assert [r["frame_index"] for r in stored] == list(range(40))
    assert [r["frame_index"] for r in direct.json()["results"]] == list(range(40))
    for job_frame, direct_frame in zip(stored, direct.json()["results"], strict=True):
        assert_same_result(job_frame, direct_frame)
    score = Score()
    for truth, frame in zip(load_truth(accuracy_video), stored, strict=True):
        score.add(truth, frame["result"]["detections"])
    print(f"job on {accuracy_video.name}: {score}")
    assert score.recall >= 0.95
    assert score.read_rate >= 0.90
    assert leftover_files(api) == []


def test_corrupt_frame_gets_an_error_and_the_rest_are_processed(
    api: ApiServer, corrupt_frame_video: Path
) -> None:
    job_id = submit(api, corrupt_frame_video, pipeline_id="yolo")
    direct = upload(api, "process", corrupt_frame_video, pipeline_id="yolo")
    assert direct.status_code == 200, direct.text
    wait_completed(api, [job_id])
    for frames in (results(api, job_id), direct.json()["results"]):
        assert [f["frame_index"] for f in frames] == list(range(12))
        assert frames[5]["result"] == {"error": "corrupt_frame", "detail": "frame 5: undecodable"}
        assert all("detections" in f["result"] for i, f in enumerate(frames) if i != 5)


def test_jobs_list_pages_and_filters(api: ApiServer, short_video: Path) -> None:
    job_ids = [submit(api, short_video, pipeline_id="yolo", max_frames=2) for _ in range(3)]
    wait_completed(api, job_ids)
    first = httpx.get(f"{api.http}/v1/video/jobs", params={"limit": 2}, timeout=10).json()
    second = httpx.get(
        f"{api.http}/v1/video/jobs", params={"limit": 2, "offset": 2}, timeout=10
    ).json()
    assert first["total"] == second["total"] >= 3
    assert (first["limit"], first["offset"], second["offset"]) == (2, 0, 2)
    assert [j["job_id"] for j in first["jobs"]] == job_ids[::-1][:2]  # newest first
    assert second["jobs"][0]["job_id"] == job_ids[0]
    completed = httpx.get(
        f"{api.http}/v1/video/jobs", params={"status": "completed", "limit": 500}, timeout=10
    ).json()
    assert {j["status"] for j in completed["jobs"]} == {"completed"}
    assert set(job_ids) <= {j["job_id"] for j in completed["jobs"]}


def test_ready_checks_duckdb(api: ApiServer) -> None:
    body = httpx.get(f"{api.http}/ready", timeout=10).json()
    assert body["checks"]["duckdb"] is True
