"""A shutdown that reaches a job's worker while the job's final write is on the store's thread:
a write that ran commits, so the job is finished (counted, its upload removed), not returned to
the queue; a write that never started leaves the job to be requeued. A real DuckDB file and
real videos; inference is a stand-in (no Triton)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from api.core.config import Settings
from api.jobs.store import JobRecord, JobStatus, JobStore, NewJob
from api.jobs.worker import JobRunner

RETURNED = "job returned to the queue (shutdown)"


class EchoInference:
    async def infer(self, pipeline_id: str, frame: bytes) -> dict:
        return {"pipeline": pipeline_id}


class ShutdownDuringFinalWrite:
    """The store, except that the worker's task is cancelled (as `JobRunner.stop` does) at the
    job's final write: after it committed (`ran=True`: the await that waited for it is what the
    cancel hits) or before it could start (`ran=False`)."""

    def __init__(self, store: JobStore, ran: bool) -> None:
        self._store, self._ran = store, ran

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)

    async def _shutdown(self) -> None:
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        await asyncio.Event().wait()  # the cancellation is delivered here

    async def save_chunk(
        self, job_id: str, results: Sequence[tuple[int, dict]], complete: bool
    ) -> int:
        if complete and not self._ran:
            await self._shutdown()
        done = await self._store.save_chunk(job_id, results, complete)
        if complete:
            await self._shutdown()
        return done

    async def fail(self, job_id: str, error: str) -> None:
        if not self._ran:
            await self._shutdown()
        await self._store.fail(job_id, error)
        await self._shutdown()


def finished(status: str) -> float:
    sample = REGISTRY.get_sample_value("framegate_jobs_finished_total", {"status": status})
    return sample or 0.0


async def shut_down_at_the_final_write(
    tmp_path: Path, video: bytes, ran: bool, caplog: pytest.LogCaptureFixture
) -> tuple[JobRecord, dict[str, float], bool, list[str]]:
    """Runs one job (frames 0, 5, 10, 15 of `video`) to its final write, where the shutdown
    lands; returns the stored job, the finished-jobs counts it added, whether its upload is
    still there, and the worker's log messages."""
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    upload = uploads / "up.mp4"
    upload.write_bytes(video)
    store = JobStore(tmp_path / "framegate.duckdb")
    await store.open()
    try:
        await store.create(NewJob("job-1", "yolo", upload.name, 5, None, 4))
        job = await store.claim()
        assert job is not None
        wrapped = ShutdownDuringFinalWrite(store, ran)
        runner = JobRunner(wrapped, EchoInference(), Settings(), uploads)  # type: ignore[arg-type]
        before = {s: finished(s) for s in ("completed", "failed")}
        with caplog.at_level(logging.INFO, logger="framegate.jobs"):
            task = asyncio.create_task(runner._run(job))
            with pytest.raises(asyncio.CancelledError):
                await task
        stored = await store.get("job-1")
    finally:
        await store.close()
    assert stored is not None
    added = {s: finished(s) - before[s] for s in before}
    return stored, added, upload.exists(), [r.getMessage() for r in caplog.records]


async def test_a_job_whose_last_chunk_landed_counts_as_completed(
    tmp_path: Path, short_video: Path, caplog: pytest.LogCaptureFixture
) -> None:
    job, added, upload_kept, messages = await shut_down_at_the_final_write(
        tmp_path, short_video.read_bytes(), ran=True, caplog=caplog
    )
    assert (job.status, job.frames_done) == (JobStatus.COMPLETED, 4)
    assert added == {"completed": 1, "failed": 0}
    assert not upload_kept  # a completed job's upload is not kept
    assert "job completed" in messages and RETURNED not in messages


async def test_a_job_whose_failure_landed_counts_as_failed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    job, added, upload_kept, messages = await shut_down_at_the_final_write(
        tmp_path, b"not a video", ran=True, caplog=caplog
    )
    assert job.status is JobStatus.FAILED and job.error == "file is not a readable video"
    assert added == {"completed": 0, "failed": 1}
    assert not upload_kept
    assert "job failed" in messages and RETURNED not in messages


@pytest.mark.parametrize("readable", [True, False])
async def test_a_final_write_that_never_ran_leaves_the_job_queued(
    tmp_path: Path, short_video: Path, readable: bool, caplog: pytest.LogCaptureFixture
) -> None:
    video = short_video.read_bytes() if readable else b"not a video"
    job, added, upload_kept, messages = await shut_down_at_the_final_write(
        tmp_path, video, ran=False, caplog=caplog
    )
    assert (job.status, job.attempts) == (JobStatus.PENDING, 0)  # the attempt given back
    assert added == {"completed": 0, "failed": 0}
    assert upload_kept  # the next run needs it
    assert RETURNED in messages
