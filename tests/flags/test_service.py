from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from api.core.config import FlagProviderName
from api.core.polling import apoll_until
from api.flags import FlagContext, FlagService
from api.flags.flagfile import set_streaming
from tests.flags.conftest import WAIT_S, StartService, ctx, file_settings, make_settings


def test_context_maps_to_evaluation_context() -> None:
    context = FlagContext(targeting_key="s-1", pipeline_id="yolo", tenant="acme")
    evaluation = context.to_evaluation_context()
    assert evaluation.targeting_key == "s-1"
    assert evaluation.attributes == {"pipeline_id": "yolo", "tenant": "acme"}


def test_context_omits_absent_attributes() -> None:
    assert FlagContext(targeting_key="s-1").to_evaluation_context().attributes == {}


async def test_service_before_start_gives_default() -> None:
    service = FlagService(make_settings(streaming_enabled=False))
    assert await service.streaming_enabled(ctx()) is False
    assert service.status()["state"] == "not_started"


async def test_service_start_twice_is_an_error(start_service: StartService) -> None:
    service = await start_service(make_settings(flag_provider=FlagProviderName.ENV))
    with pytest.raises(RuntimeError, match=r"FlagService\.start: expected not_started"):
        await service.start()


async def test_service_stop_unbinds_provider(tmp_path: Path) -> None:
    path = tmp_path / "flags.json"
    set_streaming(path, on=False)
    service = FlagService(file_settings(path, streaming_enabled=True))
    await service.start()
    assert await service.streaming_enabled(ctx()) is False
    await service.stop()
    assert service.status()["state"] == "stopped"
    assert await service.streaming_enabled(ctx()) is True  # no provider: the default
    await service.stop()  # idempotent


async def test_service_unsubscribe_stops_callbacks(
    tmp_path: Path, start_service: StartService
) -> None:
    path = tmp_path / "flags.json"
    set_streaming(path, on=True)
    service = await start_service(file_settings(path))
    kept: list[None] = []
    dropped: list[None] = []
    service.subscribe(lambda: kept.append(None))
    unsubscribe = service.subscribe(lambda: dropped.append(None))
    unsubscribe()
    unsubscribe()
    set_streaming(path, on=False)
    await apoll_until(lambda: bool(kept), WAIT_S, what="callback")
    assert dropped == []


async def test_service_failing_callback_does_not_starve_others(
    tmp_path: Path, start_service: StartService, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "flags.json"
    set_streaming(path, on=True)
    service = await start_service(file_settings(path))
    calls: list[None] = []

    def broken() -> None:
        raise RuntimeError("boom")

    service.subscribe(broken)
    service.subscribe(lambda: calls.append(None))
    flags_log = logging.getLogger("framegate.flags")
    flags_log.addHandler(caplog.handler)  # `framegate` stops propagating once logging is set up
    try:
        with caplog.at_level(logging.ERROR, logger="framegate.flags"):
            set_streaming(path, on=False)
            await apoll_until(lambda: bool(calls), WAIT_S, what="second callback")
    finally:
        flags_log.removeHandler(caplog.handler)
    assert "flag change callback" in caplog.text


async def test_service_status_fields(tmp_path: Path, start_service: StartService) -> None:
    path = tmp_path / "flags.json"
    set_streaming(path, on=True)
    service = await start_service(file_settings(path))
    await service.streaming_enabled(ctx())
    status = service.status()
    assert datetime.fromisoformat(status.pop("last_change")) <= datetime.now(UTC)
    assert status == {
        "flag": "video-streaming",
        "provider": "file",
        "source": str(path),
        "state": "ready",
        "error": None,
        "default": True,
        "last_value": True,
    }
