"""Job workers: claim a pending job, run its frames through inference, store results in chunks.

Lifecycle of a job (all state in the store, nothing only in memory):
  pending --claim (attempts+1)--> running --last chunk stored--> completed
  running --clean shutdown--> pending (attempt given back, stored frames kept)
  running --process died--> recovered at start-up: pending (resumes after its stored frames), or
                            failed once JOBS_MAX_ATTEMPTS attempts have been used
  running --upload gone / unexpected error--> failed
Inference being unavailable is not the job's fault: the chunk is retried with capped exponential
backoff while the job stays running, and no attempt is used up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential

from api.core.config import Settings
from api.inference.errors import BatcherClosed, InferenceUnavailable
from api.jobs import metrics
from api.jobs.frames import SampledFrame, UnreadableVideo
from api.jobs.processing import FrameResult, Inference, infer_chunk, open_frames
from api.jobs.store import DB_FILE_NAME, JobRecord, JobStatus, JobStore, Recovery

log = logging.getLogger("framegate.jobs")

UPLOADS_DIR = "uploads"
TMP_DIR = "tmp"


class JobError(RuntimeError):
    """A job cannot be processed; the message is what its status reports."""


def job_indices(job: JobRecord) -> range:
    """The source frames a job processes (`frames_total` was computed from the same rule)."""
    return range(0, job.frames_total * job.frame_stride, job.frame_stride)


class JobRunner:
    def __init__(
        self, store: JobStore, inference: Inference, settings: Settings, uploads: Path
    ) -> None:
        self._store = store
        self._inference = inference
        self._settings = settings
        self._uploads = uploads
        self._wakeups: list[asyncio.Event] = []
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        for n in range(self._settings.jobs_concurrency):
            wakeup = asyncio.Event()
            self._wakeups.append(wakeup)
            self._tasks.append(asyncio.create_task(self._work(wakeup), name=f"job-worker-{n}"))

    def wake(self) -> None:
        """A job was submitted: idle workers look at the queue now rather than at the next poll."""
        for wakeup in self._wakeups:
            wakeup.set()

    async def stop(self) -> None:
        """Cancel the workers; each gives its running job back to the queue before it exits."""
        for task in self._tasks:
            task.cancel()
        outcomes = await asyncio.gather(*self._tasks, return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, Exception):
                log.error("job worker ended with an error", exc_info=outcome)
        self._tasks.clear()

    async def _work(self, wakeup: asyncio.Event) -> None:
        while True:
            wakeup.clear()
            job = await self._claim()
            if job is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wakeup.wait(), self._settings.jobs_poll_interval_s)
                continue
            try:
                await self._run(job)
            except Exception:  # the store failed while finishing the job; recovery handles it
                log.exception("job worker error", extra={"job_id": job.job_id})
                await asyncio.sleep(self._settings.jobs_poll_interval_s)  # no tight error loop

    async def _claim(self) -> JobRecord | None:
        try:
            return await self._store.claim()
        except Exception:
            log.exception("claiming a job failed")
            return None

    async def _run(self, job: JobRecord) -> None:
        fields = {"job_id": job.job_id, "pipeline_id": job.pipeline_id, "attempt": job.attempts}
        log.info("job started", extra={**fields, "frames_done": job.frames_done})
        metrics.JOBS_RUNNING.inc()
        try:
            error = await self._processed(job, fields)
            if error is not None:
                fields = {**fields, "error": error}
                await self._store.fail(job.job_id, error)
        except (asyncio.CancelledError, BatcherClosed):
            await self._interrupted(job, fields)
            raise asyncio.CancelledError from None
        else:
            await (self._completed if error is None else self._failed)(job, fields)
        finally:
            metrics.JOBS_RUNNING.dec()

    async def _processed(self, job: JobRecord, fields: dict) -> str | None:
        """Runs the job's frames; None when it completed, else the error its status reports."""
        try:
            await self._process(job)
        except (JobError, UnreadableVideo) as exc:
            return str(exc)
        except BatcherClosed:  # the shutdown's, not the job's
            raise
        except Exception:
            log.exception("job failed unexpectedly", extra=fields)
            return "internal error while processing the job"
        return None

    async def _interrupted(self, job: JobRecord, fields: dict) -> None:
        """A shutdown cancelled the worker: the job goes back to the queue, unless the store write
        the cancel raced with (the last chunk, or the failure) had finished it. Such a write runs
        on the store's thread and commits whatever happens to the await; the store's next call
        runs after it."""
        status = await self._store.requeue(job.job_id)
        if status is JobStatus.COMPLETED:
            await self._completed(job, fields)
        elif status is JobStatus.FAILED:
            await self._failed(job, fields)
        else:
            log.info("job returned to the queue (shutdown)", extra=fields)

    async def _completed(self, job: JobRecord, fields: dict) -> None:
        metrics.JOBS_FINISHED.labels("completed").inc()
        log.info("job completed", extra=fields)
        await self._remove_upload(job)

    async def _failed(self, job: JobRecord, fields: dict) -> None:
        metrics.JOBS_FINISHED.labels("failed").inc()
        log.warning("job failed", extra=fields)
        await self._remove_upload(job)

    async def _remove_upload(self, job: JobRecord) -> None:
        await asyncio.to_thread((self._uploads / job.upload_name).unlink, missing_ok=True)

    async def _process(self, job: JobRecord) -> None:
        path = self._uploads / job.upload_name
        if not await asyncio.to_thread(path.is_file):
            raise JobError("the uploaded video is missing from the data directory")
        stored = await self._store.stored_frames(job.job_id)
        wanted = [i for i in job_indices(job) if i not in stored]
        if not wanted:
            await self._store.save_chunk(job.job_id, [], complete=True)
            return
        remaining = len(wanted)
        async with open_frames(path, wanted) as reader:
            while frames := await asyncio.to_thread(reader.read, self._settings.video_chunk_frames):
                results = await self._infer_with_retry(job, frames)
                remaining -= len(frames)
                await self._store.save_chunk(job.job_id, results, complete=remaining == 0)
                metrics.JOB_FRAMES.inc(len(results))
                if remaining == 0:  # complete: no further read for a shutdown to interrupt
                    return

    async def _infer_with_retry(
        self, job: JobRecord, frames: list[SampledFrame]
    ) -> list[FrameResult]:
        """Retried for as long as inference is unavailable (never given up: the job waits),
        JOBS_RETRY_INITIAL_S doubling up to JOBS_RETRY_MAX_S; any other error ends it."""

        def before_sleep(state: RetryCallState) -> None:
            assert state.outcome is not None and state.next_action is not None  # set on retry
            metrics.JOB_INFERENCE_RETRIES.inc()
            log.warning(
                "inference unavailable; the job waits and retries",
                extra={
                    "job_id": job.job_id,
                    "retry_in_s": state.next_action.sleep,
                    "reason": str(state.outcome.exception()),
                },
            )

        retrying = AsyncRetrying(
            retry=retry_if_exception_type(InferenceUnavailable),
            wait=wait_exponential(
                multiplier=self._settings.jobs_retry_initial_s, max=self._settings.jobs_retry_max_s
            ),
            before_sleep=before_sleep,
            reraise=True,
        )
        return await retrying(
            infer_chunk, self._inference, job.pipeline_id, frames, failures_as_results=True
        )


class JobSystem:
    """The store plus its workers, owned by the app's lifespan (ROLE=all|jobs)."""

    def __init__(self, store: JobStore, runner: JobRunner, data_dir: Path) -> None:
        self.store = store
        self.runner = runner
        self.uploads_dir = data_dir / UPLOADS_DIR
        self.tmp_dir = data_dir / TMP_DIR

    @classmethod
    async def start(cls, settings: Settings, inference: Inference) -> JobSystem:
        store = JobStore(settings.data_dir / DB_FILE_NAME)
        applied = await store.open()
        try:
            recovery = await store.recover(settings.jobs_max_attempts)
            runner = JobRunner(store, inference, settings, settings.data_dir / UPLOADS_DIR)
            system = cls(store, runner, settings.data_dir)
            await system._sweep(recovery)
        except BaseException:
            await store.close()
            raise
        log.info(
            "job store open",
            extra={
                "path": str(store.path),
                "migrations_applied": applied,
                "requeued": recovery.requeued,
                "failed": recovery.failed,
            },
        )
        system.runner.start()
        return system

    async def _sweep(self, recovery: Recovery) -> None:
        """Remove files no job will read: uploads of finished or never-created jobs (a crash
        between upload and insert) and temporary files of interrupted synchronous requests."""
        keep = await self.store.active_uploads()

        def sweep() -> int:
            removed = 0
            for directory in (self.uploads_dir, self.tmp_dir):
                directory.mkdir(parents=True, exist_ok=True)
                for item in directory.iterdir():
                    if item.is_file() and (directory == self.tmp_dir or item.name not in keep):
                        item.unlink(missing_ok=True)
                        removed += 1
            return removed

        removed = await asyncio.to_thread(sweep)
        if removed:
            log.info("removed stale upload files", extra={"count": removed})

    async def stop(self) -> None:
        try:
            await self.runner.stop()
        finally:
            await self.store.close()
        log.info("job system stopped")
