"""Route dependencies (`Annotated` aliases): the lifespan's `Services`, handed to HTTP and
WebSocket routes alike, so a route names what it needs and a test app built with
`create_app(settings, inference=fake, flags=fake)` gives it fakes without patching anything."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException
from starlette.requests import HTTPConnection

from api.core.config import Settings
from api.core.shutdown import Drain
from api.inference.service import Inference
from api.inference.watch import TritonWatch
from api.jobs.worker import JobSystem
from api.lifespan import Services
from api.streaming.service import StreamingService


def get_services(connection: HTTPConnection) -> Services:
    return connection.app.state.services


def get_app_settings(connection: HTTPConnection) -> Settings:
    return get_services(connection).settings


def get_inference(connection: HTTPConnection) -> Inference:
    return get_services(connection).inference


def get_drain(connection: HTTPConnection) -> Drain:
    return get_services(connection).drain


def get_triton_watch(connection: HTTPConnection) -> TritonWatch:
    return get_services(connection).triton_watch


def get_streaming(connection: HTTPConnection) -> StreamingService:
    streaming = get_services(connection).streaming
    if streaming is None:  # the router is only mounted with streaming: a wiring error
        raise RuntimeError("streaming route mounted without a StreamingService")
    return streaming


def get_jobs(connection: HTTPConnection) -> JobSystem:
    jobs = get_services(connection).jobs
    if jobs is None:
        raise HTTPException(404, "this server runs no video jobs (ROLE=stream)")
    return jobs


ServicesDep = Annotated[Services, Depends(get_services)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
InferenceDep = Annotated[Inference, Depends(get_inference)]
DrainDep = Annotated[Drain, Depends(get_drain)]
TritonWatchDep = Annotated[TritonWatch, Depends(get_triton_watch)]
StreamingDep = Annotated[StreamingService, Depends(get_streaming)]
JobsDep = Annotated[JobSystem, Depends(get_jobs)]
