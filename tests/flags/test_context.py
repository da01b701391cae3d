"""FlagContext, the evaluation context of one handshake, as flagd targeting sees it: through the
real file provider, rules on `tenant`, on `targetingKey` (the chart's rollout form) and on an
absent attribute; and as the kill switch groups sessions by it (value equality)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from api.flags.context import FlagContext
from api.flags.flagfile import default_document, write_document
from api.flags.keys import STREAMING_FLAG
from tests.flags.conftest import StartService, file_settings

ONLY_ACME = {"if": [{"==": [{"var": "tenant"}, "acme"]}, "on", "off"]}
# The chart's percentage rollout (helm/framegate/values.yaml: flags.videoStreaming.targeting).
CHART_ROLLOUT = {"fractional": [{"var": "targetingKey"}, ["on", 50], ["off", 50]]}
# An attribute that is absent must be null to the rule, not the string "None".
TENANT_IS_NONE_TEXT = {"if": [{"==": [{"var": "tenant"}, "None"]}, "off", "on"]}


def flag_file(tmp_path: Path, targeting: dict[str, Any]) -> Path:
    document = default_document(on=False)
    document["flags"][STREAMING_FLAG]["targeting"] = targeting
    path = tmp_path / "flags.json"
    write_document(path, document)
    return path


async def test_tenant_targeting_sees_the_tenant(
    tmp_path: Path, start_service: StartService
) -> None:
    service = await start_service(file_settings(flag_file(tmp_path, ONLY_ACME)))

    assert await service.streaming_enabled(FlagContext("c-1", "yolo", "acme")) is True
    assert await service.streaming_enabled(FlagContext("c-1", "yolo", "globex")) is False
    assert await service.streaming_enabled(FlagContext("c-1", "yolo")) is False


async def test_an_absent_attribute_is_not_sent_as_text(
    tmp_path: Path, start_service: StartService
) -> None:
    service = await start_service(file_settings(flag_file(tmp_path, TENANT_IS_NONE_TEXT)))

    assert await service.streaming_enabled(FlagContext("c-1", None, None)) is True


async def test_the_rollout_buckets_on_the_targeting_key_alone(
    tmp_path: Path, start_service: StartService
) -> None:
    service = await start_service(file_settings(flag_file(tmp_path, CHART_ROLLOUT)))
    keys = [f"camera-{i}" for i in range(40)]

    by_key = [await service.streaming_enabled(FlagContext(k, "yolo")) for k in keys]
    again = [await service.streaming_enabled(FlagContext(k, "ocr", "acme")) for k in keys]

    assert by_key == again  # a client keeps its answer whatever pipeline or tenant it asks for
    assert True in by_key and False in by_key  # and the keys do split


def test_equal_contexts_are_one_group_for_the_kill_switch() -> None:
    groups: dict[FlagContext, int] = {}
    for context in (
        FlagContext("c-1", "yolo", "acme"),
        FlagContext("c-1", "yolo", "acme"),
        FlagContext("c-1", "yolo"),
        FlagContext("c-2", "yolo", "acme"),
    ):
        groups[context] = groups.get(context, 0) + 1

    assert list(groups.values()) == [2, 1, 1]
