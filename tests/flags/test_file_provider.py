"""The `file` provider through the real openfeature-sdk and flagd's in-process FILE resolver."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

from openfeature.flag_evaluation import Reason

from api.core.polling import apoll_until
from api.flags.flagfile import default_document, set_streaming, write_document
from api.flags.keys import STREAMING_FLAG
from tests.flags.conftest import (
    FLIP_DEADLINE_S,
    WAIT_S,
    StartService,
    ctx,
    file_settings,
    wait_for_value,
)
from tests.support.polling import seconds_until

ROLLOUT_50_50 = {"fractional": [["on", 50], ["off", 50]]}
ONLY_YOLO = {"if": [{"==": [{"var": "pipeline_id"}, "yolo"]}, "on", "off"]}


def write_flag(path: Path, **fields: Any) -> None:
    document = default_document()
    document["flags"][STREAMING_FLAG].update(fields)
    write_document(path, document)


async def test_file_flag_off_reads_false(tmp_path: Path, start_service: StartService) -> None:
    path = tmp_path / "flags.json"
    set_streaming(path, on=False)
    service = await start_service(file_settings(path))
    assert await service.streaming_enabled(ctx()) is False
    assert service.status()["state"] == "ready"


async def test_file_flag_on_reads_true(tmp_path: Path, start_service: StartService) -> None:
    path = tmp_path / "flags.json"
    set_streaming(path, on=True)
    service = await start_service(file_settings(path, streaming_enabled=False))
    assert await service.streaming_enabled(ctx()) is True


async def test_file_flip_seen_within_the_kill_switch_deadline(
    tmp_path: Path, start_service: StartService
) -> None:
    path = tmp_path / "flags.json"
    set_streaming(path, on=True)
    service = await start_service(file_settings(path))
    set_streaming(path, on=False)
    off_s = await wait_for_value(service, False)
    set_streaming(path, on=True)
    on_s = await wait_for_value(service, True)
    print(f"file flip latency: off {off_s:.3f} s, on {on_s:.3f} s")
    assert off_s < FLIP_DEADLINE_S
    assert on_s < FLIP_DEADLINE_S


async def test_file_replaced_by_older_file_is_seen(
    tmp_path: Path, start_service: StartService
) -> None:
    """flagd's stock FileWatcher ignores a replacement whose mtime is not newer."""
    path = tmp_path / "flags.json"
    prepared = tmp_path / "prepared.json"
    set_streaming(prepared, on=False)
    old = time.time() - 3600
    os.utime(prepared, (old, old))
    set_streaming(path, on=True)
    service = await start_service(file_settings(path))
    os.replace(prepared, path)
    assert await wait_for_value(service, False) < FLIP_DEADLINE_S


async def test_file_same_mtime_rewrite_is_seen(tmp_path: Path, start_service: StartService) -> None:
    path = tmp_path / "flags.json"
    set_streaming(path, on=True)
    stamp = path.stat().st_mtime_ns
    service = await start_service(file_settings(path))
    set_streaming(path, on=False)
    os.utime(path, ns=(stamp, stamp))
    assert await wait_for_value(service, False) < FLIP_DEADLINE_S


async def test_file_change_callback_runs_on_loop_thread(
    tmp_path: Path, start_service: StartService
) -> None:
    path = tmp_path / "flags.json"
    set_streaming(path, on=True)
    service = await start_service(file_settings(path))
    threads: list[int] = []
    service.subscribe(lambda: threads.append(threading.get_ident()))
    set_streaming(path, on=False)
    elapsed = await seconds_until(lambda: bool(threads), WAIT_S, what="change callback")
    print(f"file flip to change callback: {elapsed:.3f} s")
    assert elapsed < FLIP_DEADLINE_S
    assert set(threads) == {threading.get_ident()}


async def test_file_fractional_rollout_splits_and_is_stable(
    tmp_path: Path, start_service: StartService
) -> None:
    path = tmp_path / "flags.json"
    write_flag(path, targeting=ROLLOUT_50_50)
    service = await start_service(file_settings(path))
    keys = [f"client-{n}" for n in range(400)]
    first = [await service.streaming_enabled(ctx(key)) for key in keys]
    again = [await service.streaming_enabled(ctx(key)) for key in keys]
    assert first == again
    assert 0.35 < sum(first) / len(first) < 0.65


async def test_file_pipeline_rule(tmp_path: Path, start_service: StartService) -> None:
    path = tmp_path / "flags.json"
    write_flag(path, defaultVariant="off", targeting=ONLY_YOLO)
    service = await start_service(file_settings(path))
    assert await service.streaming_enabled(ctx(pipeline_id="yolo")) is True
    assert await service.streaming_enabled(ctx(pipeline_id="ocr")) is False
    assert await service.streaming_enabled(ctx(pipeline_id=None)) is False


async def test_file_malformed_gives_default_and_error(
    tmp_path: Path, start_service: StartService
) -> None:
    path = tmp_path / "flags.json"
    path.write_text("{broken")
    service = await start_service(file_settings(path, streaming_enabled=False))
    assert await service.streaming_enabled(ctx()) is False
    status = service.status()
    assert status["state"] == "error"
    assert "invalid flag file" in status["error"]


async def test_file_malformed_recovers_when_fixed(
    tmp_path: Path, start_service: StartService
) -> None:
    path = tmp_path / "flags.json"
    path.write_text("{broken")
    service = await start_service(file_settings(path, streaming_enabled=False))
    write_document(path, default_document(on=True))
    await wait_for_value(service, True)
    await apoll_until(lambda: service.status()["state"] == "ready", WAIT_S, what="ready")
    assert service.status()["error"] is None


async def test_file_malformed_after_good_keeps_last_flags(
    tmp_path: Path, start_service: StartService
) -> None:
    path = tmp_path / "flags.json"
    set_streaming(path, on=False)
    service = await start_service(file_settings(path, streaming_enabled=True))
    path.write_text("{broken")
    await apoll_until(lambda: service.status()["state"] == "error", WAIT_S, what="error state")
    assert await service.streaming_enabled(ctx()) is False
    assert "invalid flag file" in service.status()["error"]


async def test_file_missing_gives_default_until_written(
    tmp_path: Path, start_service: StartService
) -> None:
    path = tmp_path / "flags.json"
    service = await start_service(file_settings(path, streaming_enabled=True))
    assert await service.streaming_enabled(ctx()) is True
    assert "flag file not found" in service.status()["error"]
    set_streaming(path, on=False)
    assert await wait_for_value(service, False) < FLIP_DEADLINE_S


async def test_file_disabled_state_gives_default(
    tmp_path: Path, start_service: StartService
) -> None:
    path = tmp_path / "flags.json"
    write_flag(path, state="DISABLED", defaultVariant="off")
    service = await start_service(file_settings(path, streaming_enabled=True))
    details = await service.evaluate(ctx())
    assert (details.value, details.reason) == (True, Reason.DISABLED)


async def test_file_disabled_state_gives_false_default(
    tmp_path: Path, start_service: StartService
) -> None:
    path = tmp_path / "flags.json"
    write_flag(path, state="DISABLED", defaultVariant="on")
    service = await start_service(file_settings(path, streaming_enabled=False))
    assert await service.streaming_enabled(ctx()) is False


async def test_file_status_reports_source_and_change(
    tmp_path: Path, start_service: StartService
) -> None:
    path = tmp_path / "flags.json"
    set_streaming(path, on=True)
    service = await start_service(file_settings(path))
    await service.streaming_enabled(ctx())
    set_streaming(path, on=False)
    await apoll_until(
        lambda: service.status()["last_change"] is not None, WAIT_S, what="last_change"
    )
    await wait_for_value(service, False)
    status = service.status()
    assert status["provider"] == "file"
    assert status["source"] == str(path)
    assert status["last_value"] is False
