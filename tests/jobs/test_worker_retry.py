"""JobRunner's chunk retry while inference is unavailable (tenacity): the delays, the log lines
and the metric, with a stand-in inference service (no Triton, no store)."""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from api.core.config import Settings
from api.inference.errors import InferenceUnavailable
from api.jobs.frames import SampledFrame
from api.jobs.store import JobRecord, JobStatus
from api.jobs.worker import JobRunner

FRAMES = [SampledFrame(3, b"b")]  # one frame: one inference call per attempt


class FlakyInference:
    """Raises `failure` on its first `failing` calls, then answers."""

    def __init__(self, failing: int, failure: Exception) -> None:
        self.failing, self.failure, self.calls = failing, failure, 0

    async def infer(self, pipeline_id: str, frame: bytes) -> dict:
        self.calls += 1
        if self.calls <= self.failing:
            raise self.failure
        return {"pipeline": pipeline_id, "frame": frame.decode()}


def runner(inference: FlakyInference, tmp_path: Path) -> JobRunner:
    settings = Settings(jobs_retry_initial_s=0.01, jobs_retry_max_s=0.025)
    return JobRunner(None, inference, settings, tmp_path)  # type: ignore[arg-type]  # no store used


def job() -> JobRecord:
    now = datetime(2026, 1, 1)
    return JobRecord("job-1", "yolo", JobStatus.RUNNING, "up.mp4", 3, None, 2, 1, 1, None, now, now)


def retries() -> float:
    return REGISTRY.get_sample_value("framegate_job_inference_retries_total") or 0.0


async def test_unavailable_inference_is_retried_with_capped_doubling_delays(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    inference = FlakyInference(failing=4, failure=InferenceUnavailable("triton down"))
    before = retries()
    with caplog.at_level(logging.WARNING, logger="framegate.jobs"):
        results = await runner(inference, tmp_path)._infer_with_retry(job(), FRAMES)
    assert results == [(3, {"pipeline": "yolo", "frame": "b"})]
    waits = [r for r in caplog.records if r.getMessage().startswith("inference unavailable")]
    assert [r.retry_in_s for r in waits] == [0.01, 0.02, 0.025, 0.025]  # doubling, capped
    assert {(r.job_id, r.reason) for r in waits} == {("job-1", "triton down")}
    assert retries() - before == 4
    assert inference.calls == 5


async def test_other_inference_errors_are_not_retried(tmp_path: Path) -> None:
    inference = FlakyInference(failing=1, failure=RuntimeError("bug"))
    with pytest.raises(RuntimeError, match="bug"):
        await runner(inference, tmp_path)._infer_with_retry(job(), FRAMES)
    assert inference.calls == 1
