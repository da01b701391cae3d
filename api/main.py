"""Application assembly only: the lifespan (api/lifespan.py) and the routers for the role.

ROLE=stream mounts streaming (no DuckDB), ROLE=jobs the job API (no WebSocket router), ROLE=all
both. STREAMING_ROUTER=false leaves the WebSocket router out entirely (rollback method 2).
"""

from __future__ import annotations

from fastapi import FastAPI, WebSocket
from fastapi.responses import PlainTextResponse
from starlette.types import Receive, Scope, Send

from api.core.config import Settings, get_settings
from api.core.logging import configure_logging
from api.inference.service import Inference
from api.lifespan import drain, jobs_mounted, lifespan, streaming_mounted
from api.routes import health, pipelines, video, web
from api.streaming.router import router as stream_router
from api.streaming.service import Flags

__all__ = ["app_factory", "create_app", "drain", "jobs_mounted", "streaming_mounted"]


async def _not_found(scope: Scope, receive: Receive, send: Send) -> None:
    """Unmatched routes are 404 for WebSocket upgrades too (Starlette's default is 403): an
    unmounted streaming router looks exactly like a flag that is off, the endpoint is absent."""
    if scope["type"] == "websocket":
        websocket = WebSocket(scope, receive, send)
        await websocket.send_denial_response(PlainTextResponse("Not Found", status_code=404))
        return
    await PlainTextResponse("Not Found", status_code=404)(scope, receive, send)


def create_app(
    settings: Settings | None = None,
    *,
    inference: Inference | None = None,
    flags: Flags | None = None,
) -> FastAPI:
    """The app for `settings`. `inference` replaces the Triton boundary and `flags` the flag
    service (tests build a tiny app with fakes); the caller then owns them."""
    settings = settings or get_settings()
    configure_logging(settings.log_level)
    app = FastAPI(title="Framegate", version="0.1.0", lifespan=lifespan(settings, inference, flags))
    app.router.default = _not_found
    app.include_router(health.router)
    app.include_router(pipelines.router)
    if streaming_mounted(settings):
        app.include_router(stream_router)
        app.include_router(web.router)  # the browser client at GET /
    if jobs_mounted(settings):
        app.include_router(video.router)
    return app


def app_factory() -> FastAPI:
    """Entry point for `uvicorn --factory api.main:app_factory` (settings from the environment)."""
    return create_app()
