"""What the app holds while it runs (`Services`), how it is opened and closed (the lifespan), and
the graceful drain between the two.

Opened in order — inference, then streaming (flags, sessions, kill switch), then jobs, then the
Triton watch — and closed in reverse after the drain, each step that waits on Triton cut short
at the drain's deadline.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI

from api.core.config import Role, Settings
from api.core.loop_audit import LoopAudit
from api.core.shutdown import Drain
from api.inference.replicas import ReplicaSet
from api.inference.service import Inference, InferenceService
from api.inference.watch import TritonWatch
from api.jobs.worker import JobSystem
from api.streaming.service import Flags, StreamingService

log = logging.getLogger("framegate.drain")
MIN_STEP_S = 0.2  # a shutdown step past the drain's deadline still gets this long


def streaming_mounted(settings: Settings) -> bool:
    return settings.streaming_router and settings.role in (Role.ALL, Role.STREAM)


def jobs_mounted(settings: Settings) -> bool:
    """The job system (DuckDB store, workers, /v1/video): never opened by ROLE=stream."""
    return settings.role in (Role.ALL, Role.JOBS)


@dataclass
class Services:
    """Everything the routes use, built by the lifespan (api/deps.py hands them out)."""

    settings: Settings
    inference: Inference
    drain: Drain
    triton_watch: TritonWatch
    streaming: StreamingService | None = None
    jobs: JobSystem | None = None


async def drain(app: FastAPI) -> None:
    """The graceful drain, within SHUTDOWN_TIMEOUT_S: unready and refusing streams at once;
    then, side by side, sessions answer the frames they sent to Triton and close with 1012, and
    running jobs go back to the queue. `framegate serve` runs it on SIGTERM while uvicorn still
    listens; the lifespan's end runs it otherwise (a second call does nothing)."""
    services: Services = app.state.services
    shutdown = services.drain
    if not shutdown.begin():
        return
    sessions = len(services.streaming.sessions) if services.streaming else 0
    log.info(
        "draining: unready, refusing new streams",
        extra={"sessions": sessions, "timeout_s": shutdown.timeout_s},
    )
    steps: list[Awaitable[object]] = []
    if services.streaming is not None:
        steps.append(services.streaming.drain(shutdown.answer_by, shutdown.closed_by))
    if services.jobs is not None:
        steps.append(services.jobs.runner.stop())  # each running job is requeued as it ends
    results = await asyncio.gather(*steps)
    left = results[0] if services.streaming is not None else 0
    log.info("drained", extra={"elapsed_s": round(shutdown.elapsed_s, 3), "sessions_left": left})


async def _before(deadline: float, step: Awaitable[None], what: str) -> None:
    """A shutdown step that waits on Triton (batches in flight at a hung server wait out
    TRITON_TIMEOUT_S): cut short at the drain's deadline, at least a moment granted."""
    try:
        await asyncio.wait_for(step, max(MIN_STEP_S, deadline - time.monotonic()))
    except TimeoutError:
        log.warning("closing %s cut short at SHUTDOWN_TIMEOUT_S", what)


def lifespan(
    settings: Settings, inference: Inference | None = None, flags: Flags | None = None
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """The app's lifespan. An injected `inference` or `flags` belongs to the caller (a test's
    fake boundary): used, never closed here."""

    @asynccontextmanager
    async def run(app: FastAPI) -> AsyncIterator[None]:
        audit = LoopAudit() if settings.loop_audit else None
        if audit is not None:
            audit.install()  # the lifespan runs on the loop thread: audit it from the start
        services = await _open(settings, inference, flags)
        app.state.services = services
        try:
            yield
        finally:
            await drain(app)
            await _close(services, owns_inference=inference is None)
            if audit is not None:
                audit.uninstall()

    return run


async def _open(settings: Settings, inference: Inference | None, flags: Flags | None) -> Services:
    boundary = inference or InferenceService(
        ReplicaSet.from_url(settings.triton_url, settings.triton_timeout_s), settings
    )
    services = Services(
        settings, boundary, Drain(settings.shutdown_timeout_s), TritonWatch(boundary)
    )
    if streaming_mounted(settings):
        services.streaming = StreamingService(settings, flags)
        await services.streaming.start()
    if jobs_mounted(settings):
        services.jobs = await JobSystem.start(settings, boundary)
    services.triton_watch.start()
    return services


async def _close(services: Services, owns_inference: bool) -> None:
    await services.triton_watch.stop()
    if services.streaming is not None:
        await services.streaming.stop()
    if services.jobs is not None:
        await services.jobs.stop()  # running jobs go back to the queue before inference closes
    if owns_inference:
        await _before(services.drain.deadline, services.inference.close(), "inference")
