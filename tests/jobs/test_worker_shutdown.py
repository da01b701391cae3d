"""A shutdown that reaches a job's worker while the last chunk's write runs: the write commits,
so the job is complete (counted, its upload removed), not returned to the queue. A real DuckDB
file and a real video; inference is a stand-in (no Triton)."""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from api.core.config import Settings
from api.jobs.store import JobStatus, JobStore, NewJob
from api.jobs.worker import JobRunner


class EchoInference:
    async def infer(self, pipeline_id: str, frame: bytes) -> dict:
        return {"pipeline": pipeline_id}


class ShutdownDuringLastWrite:
    """The store, except that the worker's task is cancelled (as `JobRunner.stop` does) while
    the last chunk is being stored: the write commits, the await that waited for it is
    cancelled."""

    def __init__(self, store: JobStore) -> None:
        self._store = store

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)

    async def save_chunk(
        self, job_id: str, results: Sequence[tuple[int, dict]], complete: bool
    ) -> int:
        done = await self._store.save_chunk(job_id, results, complete)
        if complete:
            task = asyncio.current_task()
            assert task is not None
            task.cancel()
            await asyncio.Event().wait()  # the cancellation is delivered here
        return done


def finished(status: str) -> float:
    sample = REGISTRY.get_sample_value("framegate_jobs_finished_total", {"status": status})
    return sample or 0.0


async def test_a_job_whose_last_chunk_landed_counts_as_completed(
    tmp_path: Path, short_video: Path, caplog: pytest.LogCaptureFixture
) -> None:
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    upload = Path(shutil.copy(short_video, uploads / "up.mp4"))
    store = JobStore(tmp_path / "framegate.duckdb")
    await store.open()
    try:
        await store.create(NewJob("job-1", "yolo", upload.name, 5, None, 4))  # frames 0..15
        job = await store.claim()
        assert job is not None
        runner = JobRunner(ShutdownDuringLastWrite(store), EchoInference(), Settings(), uploads)  # type: ignore[arg-type]
        before = finished("completed")
        with caplog.at_level(logging.INFO, logger="framegate.jobs"):
            task = asyncio.create_task(runner._run(job))
            with pytest.raises(asyncio.CancelledError):
                await task
        stored = await store.get("job-1")
    finally:
        await store.close()
    assert stored is not None
    assert (stored.status, stored.frames_done) == (JobStatus.COMPLETED, 4)
    assert finished("completed") - before == 1
    assert not upload.exists()  # a completed job's upload is not kept
    messages = [r.getMessage() for r in caplog.records]
    assert "job completed" in messages
    assert "job returned to the queue (shutdown)" not in messages
