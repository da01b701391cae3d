"""Fixtures for the flag tests: settings, started services (always stopped), a fake Kubernetes
API, and a check that no flag thread outlives its test."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from kubernetes.client import ApiClient

from api.core.config import FlagProviderName, Settings
from api.flags import FlagContext, FlagService, ProviderSpec
from api.flags.flagfile import default_document, dump_document
from api.flags.kube_client import make_api_client
from api.flags.kube_provider import ConfigMapFlagProvider
from tests.flags.fake_kube import FakeKube
from tests.support.polling import seconds_until

# The product promise a flag change must fit in: live sessions closed within 2 s of the flip
# (the file provider polls every 0.5 s, so this is a 4x margin on a busy machine, not a bound).
FLIP_DEADLINE_S = 2.0
WAIT_S = 5.0  # deadline for conditions that are not latency assertions
NAMESPACE = "default"
CONFIGMAP = "framegate-flags"
OUR_THREADS = ("framegate-flags", "fake-kube")
ENV_VARS = (
    "STREAMING_ENABLED",
    "FLAG_PROVIDER",
    "FLAGD_DEADLINE_MS",
    "FLAGD_OFFLINE_FLAG_SOURCE_PATH",
    "FLAGD_RESOLVER",
    "DATA_DIR",
)

StartService = Callable[..., Awaitable[FlagService]]


def make_settings(**overrides: Any) -> Settings:
    return Settings(**{"streaming_enabled": True, **overrides})


def file_settings(path: Path, **overrides: Any) -> Settings:
    return make_settings(
        flag_provider=FlagProviderName.FILE, flagd_offline_flag_source_path=path, **overrides
    )


def ctx(key: str = "client-1", pipeline_id: str | None = "yolo") -> FlagContext:
    return FlagContext(targeting_key=key, pipeline_id=pipeline_id)


async def wait_for_value(
    service: FlagService,
    expected: bool,
    context: FlagContext | None = None,
    timeout_s: float = WAIT_S,
) -> float:
    probe = context or ctx()

    async def matches() -> bool:
        return await service.streaming_enabled(probe) is expected

    return await seconds_until(matches, timeout_s, what=f"streaming_enabled == {expected}")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    yield
    deadline = time.monotonic() + WAIT_S
    while alive := [t.name for t in threading.enumerate() if t.name.startswith(OUR_THREADS)]:
        if time.monotonic() > deadline:
            pytest.fail(f"threads still running after the test: {alive}")
        time.sleep(0.01)


@pytest_asyncio.fixture(loop_scope="function")
async def start_service() -> AsyncIterator[StartService]:
    started: list[FlagService] = []

    async def start(
        settings: Settings, provider: ProviderSpec | None = None, **kwargs: Any
    ) -> FlagService:
        service = FlagService(settings, provider=provider, **kwargs)
        started.append(service)
        await service.start()
        return service

    yield start
    for service in reversed(started):
        await service.stop()


@pytest.fixture
def fake_kube() -> Iterator[FakeKube]:
    kube = FakeKube()
    kube.put_configmap(NAMESPACE, CONFIGMAP, {"flags.json": dump_document(default_document(False))})
    kube.start()
    try:
        yield kube
    finally:
        kube.stop()


@pytest.fixture
def kube_api(fake_kube: FakeKube) -> Iterator[ApiClient]:
    api = make_api_client(fake_kube.url)
    try:
        yield api
    finally:
        api.close()


@pytest_asyncio.fixture(loop_scope="function")
async def kube_service(kube_api: ApiClient, start_service: StartService) -> FlagService:
    provider = ConfigMapFlagProvider(
        CONFIGMAP, NAMESPACE, api_client=kube_api, backoff_initial_s=0.05, backoff_max_s=0.2
    )
    spec = ProviderSpec("kubernetes", provider.source, provider)
    return await start_service(make_settings(), spec)
