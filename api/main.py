"""Application assembly only: settings, lifespan-owned clients, routers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.core.config import Settings, get_settings
from api.inference.service import InferenceService
from api.inference.triton_client import TritonClient
from api.routes import health, pipelines


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.inference = InferenceService(
            TritonClient(settings.triton_url, settings.triton_timeout_s), settings
        )
        try:
            yield
        finally:
            await app.state.inference.close()

    app = FastAPI(title="Framegate", version="0.1.0", lifespan=lifespan)
    app.include_router(health.router)
    app.include_router(pipelines.router)
    return app


def app_factory() -> FastAPI:
    """Entry point for `uvicorn --factory api.main:app_factory`."""
    return create_app()
