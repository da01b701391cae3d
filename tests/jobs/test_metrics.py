"""Job metrics (api/jobs/metrics.py) as the workers move them: real JobRunner workers on a real
DuckDB store in tmp_path, a scripted inference boundary (no Triton). `status` labels are the
job's final state, as /v1/video/status reports it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from api.core.config import Settings
from api.core.polling import apoll_until
from api.jobs.store import TERMINAL, JobRecord, JobStatus, JobStore, NewJob
from api.jobs.worker import JobRunner
from api.main import create_app
from api.synthetic.video import video_frames, write_video
from tests.support.fakes import RESULT, ScriptedInference

WAIT_S = 30.0  # deadline for conditions that are not latency assertions
NAMES = (
    "framegate_jobs_running",
    "framegate_jobs_finished_total",
    "framegate_job_frames_total",
    "framegate_job_inference_retries_total",
)


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def snapshot() -> dict[str, float]:
    return {
        "running": value("framegate_jobs_running"),
        "completed": value("framegate_jobs_finished_total", status="completed"),
        "failed": value("framegate_jobs_finished_total", status="failed"),
        "frames": value("framegate_job_frames_total"),
    }


@pytest_asyncio.fixture(loop_scope="function")
async def store(tmp_path: Path) -> AsyncIterator[JobStore]:
    opened = JobStore(tmp_path / "framegate.duckdb")
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


async def run_to_the_end(store: JobStore, uploads: Path, job: NewJob) -> JobRecord:
    """One worker runs `job` until it reaches a final state; the worker is stopped after."""
    settings = Settings(jobs_concurrency=1, jobs_poll_interval_s=0.05)
    runner = JobRunner(store, ScriptedInference(lambda _: RESULT), settings, uploads)
    running = value("framegate_jobs_running")
    await store.create(job)
    runner.start()
    try:

        async def finished() -> JobRecord | None:
            record = await store.get(job.job_id)
            return record if record is not None and record.status in TERMINAL else None

        record = await apoll_until(finished, WAIT_S, what=f"job {job.job_id} to finish")
        # The store says final before the worker has counted it: stopping the worker now would
        # cancel it between the two (seen in a full-suite run), so wait until it is idle again.
        await apoll_until(
            lambda: value("framegate_jobs_running") == running, WAIT_S, what="the worker to idle"
        )
        return record
    finally:
        await runner.stop()


async def test_a_completed_job_counts_its_frames_and_its_final_state(
    store: JobStore, tmp_path: Path
) -> None:
    uploads = tmp_path / "uploads"
    write_video(uploads / "clip.mp4", video_frames(9, 3, 160, 96))
    before = snapshot()

    record = await run_to_the_end(store, uploads, NewJob("ok", "yolo", "clip.mp4", 1, None, 3))

    after = snapshot()
    assert record.status is JobStatus.COMPLETED
    assert after["completed"] - before["completed"] == 1
    assert after["failed"] == before["failed"]
    assert after["frames"] - before["frames"] == 3
    assert after["running"] == before["running"]  # back down once the job ended


async def test_a_failed_job_is_counted_under_failed(store: JobStore, tmp_path: Path) -> None:
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    before = snapshot()

    # Its upload is gone: the job fails without a frame processed.
    record = await run_to_the_end(store, uploads, NewJob("lost", "yolo", "gone.mp4", 1, None, 3))

    after = snapshot()
    assert record.status is JobStatus.FAILED
    assert after["failed"] - before["failed"] == 1
    assert after["completed"] == before["completed"]
    assert after["frames"] == before["frames"]
    assert after["running"] == before["running"]


def test_a_jobs_process_serves_the_job_metrics_on_its_metrics_endpoint(tmp_path: Path) -> None:
    settings = Settings(role="jobs", data_dir=tmp_path / "data", triton_url="127.0.0.1:1")
    inference = ScriptedInference(lambda _: RESULT)
    with TestClient(create_app(settings, inference=inference)) as client:
        exposed = client.get("/metrics").text

    missing = [name for name in NAMES if f"# TYPE {name} " not in exposed]
    assert missing == [], f"not on /metrics: {missing}"
