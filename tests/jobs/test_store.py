"""JobStore against a real DuckDB file (no Triton)."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from api.jobs.store import JobStatus, JobStore, NewJob, Recovery


@asynccontextmanager
async def opened(tmp_path: Path) -> AsyncIterator[JobStore]:
    store = JobStore(tmp_path / "framegate.duckdb")
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def new_job(job_id: str, total: int = 4) -> NewJob:
    return NewJob(job_id, "yolo", f"{job_id}.mp4", 1, None, total)


async def test_create_then_get_is_pending(tmp_path: Path) -> None:
    async with opened(tmp_path) as store:
        created = await store.create(new_job("a"))
        assert created == await store.get("a")
        assert created.status is JobStatus.PENDING
        assert (created.frames_done, created.attempts, created.error) == (0, 0, None)
        assert await store.get("missing") is None


async def test_claim_takes_oldest_pending_once(tmp_path: Path) -> None:
    async with opened(tmp_path) as store:
        for job_id in ("a", "b"):
            await store.create(new_job(job_id))
        first, second = await store.claim(), await store.claim()
        assert first is not None and second is not None
        assert (first.job_id, second.job_id) == ("a", "b")
        assert first.status is JobStatus.RUNNING and first.attempts == 1
        assert await store.claim() is None


async def test_store_calls_run_off_the_calling_thread(tmp_path: Path) -> None:
    async with opened(tmp_path) as store:
        caller = threading.get_ident()
        seen = await store._run(lambda conn: threading.get_ident())
        assert seen != caller


async def test_save_chunk_progress_equals_stored_results(tmp_path: Path) -> None:
    async with opened(tmp_path) as store:
        await store.create(new_job("a", total=4))
        await store.claim()
        assert await store.save_chunk("a", [(0, {"x": 0}), (1, {"x": 1})], complete=False) == 2
        # a re-run of frame 1 (e.g. after a crash) is not stored or counted twice
        assert await store.save_chunk("a", [(1, {"x": 9}), (2, {"x": 2})], complete=False) == 3
        assert await store.stored_frames("a") == {0, 1, 2}
        assert await store.save_chunk("a", [(3, {"x": 3})], complete=True) == 4
        job = await store.get("a")
        assert job is not None and job.status is JobStatus.COMPLETED and job.frames_done == 4
        results = json.loads(await store.results_json("a"))
        assert results == [{"frame_index": i, "result": {"x": i}} for i in range(4)]


async def test_recover_requeues_running_jobs_with_attempts_left(tmp_path: Path) -> None:
    async with opened(tmp_path) as store:
        await store.create(new_job("a"))
        await store.claim()
        await store.save_chunk("a", [(0, {})], complete=False)
    async with opened(tmp_path) as store:  # "after the crash"
        recovery = await store.recover(max_attempts=3)
        assert (recovery.requeued, recovery.failed) == (["a"], [])
        job = await store.claim()
        assert job is not None and job.attempts == 2 and job.frames_done == 1
        assert await store.stored_frames("a") == {0}


async def test_recover_fails_jobs_out_of_attempts(tmp_path: Path) -> None:
    async with opened(tmp_path) as store:
        await store.create(new_job("a"))
        await store.claim()
        assert await store.recover(max_attempts=2) == Recovery(requeued=["a"], failed=[])
        assert await store.recover(max_attempts=2) == Recovery([], [])  # pending: untouched
        await store.claim()
        assert await store.recover(max_attempts=2) == Recovery(requeued=[], failed=["a"])
        job = await store.get("a")
        assert job is not None and job.status is JobStatus.FAILED
        assert job.error == (
            "gave up after 2 attempts: the process stopped while running this job each time"
        )


async def test_requeue_gives_the_attempt_back(tmp_path: Path) -> None:
    async with opened(tmp_path) as store:
        await store.create(new_job("a"))
        await store.claim()
        assert await store.requeue("a") is JobStatus.PENDING
        job = await store.get("a")
        assert job is not None and job.status is JobStatus.PENDING and job.attempts == 0
        assert await store.requeue("missing") is None


async def test_requeue_leaves_finished_jobs_alone(tmp_path: Path) -> None:
    async with opened(tmp_path) as store:
        await store.create(new_job("a", total=1))
        await store.claim()
        await store.save_chunk("a", [(0, {})], complete=True)
        assert await store.requeue("a") is JobStatus.COMPLETED  # the worker counts it completed
        job = await store.get("a")
        assert job is not None and job.status is JobStatus.COMPLETED


async def test_updated_at_never_goes_backwards(tmp_path: Path) -> None:
    async with opened(tmp_path) as store:
        created = await store.create(new_job("a"))
        stamps = [created.updated_at]
        await store.claim()
        for i in range(4):
            await store.save_chunk("a", [(i, {})], complete=i == 3)
            job = await store.get("a")
            assert job is not None
            stamps.append(job.updated_at)
        assert stamps == sorted(stamps)


async def test_list_pages_newest_first_and_filters(tmp_path: Path) -> None:
    async with opened(tmp_path) as store:
        for job_id in ("a", "b", "c"):
            await store.create(new_job(job_id))
        await store.claim()  # a is running
        page, total = await store.list_jobs(limit=2, offset=0)
        assert total == 3 and [j.job_id for j in page] == ["c", "b"]
        page, total = await store.list_jobs(limit=2, offset=2)
        assert [j.job_id for j in page] == ["a"]
        page, total = await store.list_jobs(limit=10, offset=0, status=JobStatus.RUNNING)
        assert total == 1 and [j.job_id for j in page] == ["a"]


async def test_ping(tmp_path: Path) -> None:
    async with opened(tmp_path) as store:
        assert await store.ping() is True
