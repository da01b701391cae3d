"""StreamingService: the flag, the sessions and the kill switch held for the process's lifetime.
An injected flag service (a fake here) is the caller's: subscribed to, never started or stopped;
without one the service builds, starts and stops its own FlagService."""

from __future__ import annotations

import time
from typing import Any

import pytest

from api.core.config import Settings
from api.core.polling import apoll_until
from api.flags.context import FlagContext
from api.streaming.protocol import WS_1012_SERVICE_RESTART, ErrorCode
from api.streaming.service import StreamingService
from api.streaming.session import StreamSession
from tests.support.fakes import FakeFlags, Harness

WAIT_S = 10.0  # deadline for conditions that are not latency assertions


def settings(**overrides: Any) -> Settings:
    return Settings(**{"flag_provider": "env", "streaming_enabled": True, **overrides})


def live_session(service: StreamingService, tenant: str | None = None) -> StreamSession:
    harness = Harness()
    session = StreamSession("yolo", harness.infer, harness.send, tenant=tenant)
    assert service.sessions.try_add(session)
    return session


def disabled(session: StreamSession) -> bool:
    if not session.terminated.done():
        return False
    error = session.terminated.result().error
    return error is not None and error.code is ErrorCode.STREAMING_DISABLED


async def test_an_injected_flag_service_is_subscribed_to_but_never_started_or_stopped() -> None:
    flags = FakeFlags()
    service = StreamingService(settings(), flags)

    await service.start()
    assert service.flags is flags
    assert flags.subscribers == [service.killswitch.notify]  # flag changes reach the kill switch
    await service.stop()

    assert flags.subscribers == []
    assert not flags.started and not flags.stopped


async def test_a_flag_change_closes_live_sessions_with_streaming_disabled() -> None:
    flags = FakeFlags(enabled=True)
    service = StreamingService(settings(), flags)
    await service.start()
    try:
        session = live_session(service, tenant="acme")
        flags.enabled = False
        (notify,) = flags.subscribers
        notify()  # the provider announces the change

        await apoll_until(lambda: disabled(session), WAIT_S, what="the session told to close")
    finally:
        await service.stop()
    assert flags.asked[-1] == FlagContext(session.targeting_key, "yolo", "acme")


@pytest.mark.parametrize("fallback", [True, False])
async def test_a_failing_evaluation_counts_as_streaming_enabled(fallback: bool) -> None:
    flags = FakeFlags(failure=RuntimeError("provider hiccup"))
    service = StreamingService(settings(streaming_enabled=fallback), flags)
    session = live_session(service)

    closed = await service.killswitch.sweep()

    assert closed == (0 if fallback else 1)
    assert disabled(session) is not fallback


async def test_the_session_limit_is_stream_max_sessions() -> None:
    service = StreamingService(settings(stream_max_sessions=2), FakeFlags())
    live_session(service)
    live_session(service)

    harness = Harness()
    assert not service.sessions.try_add(StreamSession("yolo", harness.infer, harness.send))
    assert service.sessions.max_sessions == 2


async def test_drain_closes_every_session_with_1012_and_counts_those_left() -> None:
    service = StreamingService(settings(), FakeFlags())
    sessions = [live_session(service) for _ in range(2)]
    now = time.monotonic()

    left = await service.drain(now, now)  # nothing lets them go: both are still open

    assert left == 2
    assert {s.terminated.result().close_code for s in sessions} == {WS_1012_SERVICE_RESTART}


async def test_without_an_injected_flag_service_it_owns_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STREAMING_ENABLED", "false")  # what FLAG_PROVIDER=env serves
    service = StreamingService(settings(streaming_enabled=False))
    assert service.flags.status()["state"] == "not_started"

    await service.start()
    try:
        assert service.flags.status()["state"] == "ready"
        assert await service.flags.streaming_enabled(FlagContext("client-1")) is False
    finally:
        await service.stop()
    assert service.flags.status()["state"] == "stopped"
