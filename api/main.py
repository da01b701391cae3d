"""Application assembly only: settings, lifespan-owned clients, routers.

ROLE=stream mounts streaming (no DuckDB), ROLE=jobs the job API (no WebSocket router), ROLE=all
both. STREAMING_ROUTER=false leaves the WebSocket router out entirely (rollback method 2).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager

from fastapi import FastAPI, WebSocket
from fastapi.responses import PlainTextResponse
from starlette.types import Receive, Scope, Send

from api.core.config import Role, Settings, get_settings
from api.core.logging import configure_logging
from api.core.loop_audit import LoopAudit
from api.core.shutdown import Drain
from api.flags.service import FlagService
from api.inference.replicas import ReplicaSet
from api.inference.service import Inference, InferenceService
from api.inference.watch import TritonWatch
from api.jobs.worker import JobSystem
from api.routes import health, pipelines, video, web
from api.streaming.killswitch import KillSwitch
from api.streaming.registry import SessionRegistry
from api.streaming.router import router as stream_router

log = logging.getLogger("framegate.drain")
MIN_STEP_S = 0.2  # a shutdown step past the drain's deadline still gets this long


def streaming_mounted(settings: Settings) -> bool:
    return settings.streaming_router and settings.role in (Role.ALL, Role.STREAM)


def jobs_mounted(settings: Settings) -> bool:
    """The job system (DuckDB store, workers, /v1/video): never opened by ROLE=stream."""
    return settings.role in (Role.ALL, Role.JOBS)


async def drain(app: FastAPI) -> None:
    """The graceful drain, within SHUTDOWN_TIMEOUT_S: unready and refusing streams at once;
    then, side by side, sessions answer the frames they sent to Triton and close with 1012, and
    running jobs go back to the queue. `framegate serve` runs it on SIGTERM while uvicorn still
    listens; the lifespan's end runs it otherwise (a second call does nothing)."""
    state = app.state
    shutdown: Drain = state.drain
    if not shutdown.begin():
        return
    sessions: SessionRegistry = state.sessions
    jobs: JobSystem | None = getattr(state, "jobs", None)
    log.info(
        "draining: unready, refusing new streams",
        extra={"sessions": len(sessions), "timeout_s": shutdown.timeout_s},
    )
    steps = [sessions.drain(shutdown.answer_by, shutdown.closed_by)]
    if jobs is not None:
        steps.append(jobs.runner.stop())  # each running job is requeued as its worker ends
    left, *_ = await asyncio.gather(*steps)
    log.info(
        "drained",
        extra={
            "elapsed_s": round(shutdown.elapsed_s, 3),
            "sessions_left": left,
        },
    )


async def _before(deadline: float, step: Awaitable[None], what: str) -> None:
    """A shutdown step that waits on Triton (batches in flight at a hung server wait out
    TRITON_TIMEOUT_S): cut short at the drain's deadline, at least a moment granted."""
    try:
        await asyncio.wait_for(step, max(MIN_STEP_S, deadline - time.monotonic()))
    except TimeoutError:
        log.warning("closing %s cut short at SHUTDOWN_TIMEOUT_S", what)


async def _not_found(scope: Scope, receive: Receive, send: Send) -> None:
    """Unmatched routes are 404 for WebSocket upgrades too (Starlette's default is 403): an
    unmounted streaming router looks exactly like a flag that is off, the endpoint is absent."""
    if scope["type"] == "websocket":
        websocket = WebSocket(scope, receive, send)
        await websocket.send_denial_response(PlainTextResponse("Not Found", status_code=404))
        return
    await PlainTextResponse("Not Found", status_code=404)(scope, receive, send)


def create_app(settings: Settings | None = None, *, inference: Inference | None = None) -> FastAPI:
    """The app for `settings`. `inference` replaces the Triton boundary (tests build a tiny app
    with a fake one); the caller then owns it and closes it."""
    settings = settings or get_settings()
    configure_logging(settings.log_level)
    with_streaming = streaming_mounted(settings)
    with_jobs = jobs_mounted(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        audit = LoopAudit() if settings.loop_audit else None
        if audit is not None:
            audit.install()  # the lifespan runs on the loop thread: audit it from the start
        app.state.settings = settings
        app.state.inference = inference or InferenceService(
            ReplicaSet.from_url(settings.triton_url, settings.triton_timeout_s), settings
        )
        app.state.sessions = SessionRegistry(settings.stream_max_sessions)
        app.state.drain = Drain(settings.shutdown_timeout_s)
        app.state.triton_watch = watch = TritonWatch(app.state.inference)
        killswitch: KillSwitch | None = None
        if with_streaming:
            app.state.flags = FlagService(settings)
            await app.state.flags.start()
            # An evaluation with no answer counts as the provider having none: STREAMING_ENABLED.
            killswitch = KillSwitch(
                app.state.flags, app.state.sessions, fallback=settings.streaming_enabled
            )
            app.state.flags.subscribe(killswitch.notify)
            killswitch.start()
        jobs: JobSystem | None = None
        if with_jobs:
            jobs = app.state.jobs = await JobSystem.start(settings, app.state.inference)
        watch.start()
        try:
            yield
        finally:
            await drain(app)
            await watch.stop()
            if killswitch is not None:
                await killswitch.stop()
                await app.state.flags.stop()
            if jobs is not None:
                await jobs.stop()  # running jobs go back to the queue before inference closes
            if inference is None:
                await _before(app.state.drain.deadline, app.state.inference.close(), "inference")
            if audit is not None:
                audit.uninstall()

    app = FastAPI(title="Framegate", version="0.1.0", lifespan=lifespan)
    app.router.default = _not_found
    app.include_router(health.router)
    app.include_router(pipelines.router)
    if with_streaming:
        app.include_router(stream_router)
        app.include_router(web.router)  # the browser client at GET /
    if with_jobs:
        app.include_router(video.router)
    return app


def app_factory() -> FastAPI:
    """Entry point for `uvicorn --factory api.main:app_factory` (settings from the environment)."""
    return create_app()
