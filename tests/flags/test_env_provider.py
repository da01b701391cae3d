from __future__ import annotations

import pytest
from openfeature.exception import ErrorCode

from api.core.config import FlagProviderName
from api.core.polling import apoll_until
from api.flags.env_provider import parse_bool
from tests.flags.conftest import WAIT_S, StartService, ctx, make_settings

ENV = "STREAMING_ENABLED"


@pytest.mark.parametrize("text", ["false", "0", "off", "no", "FALSE", " Off "])
def test_parse_bool_false_words(text: str) -> None:
    assert parse_bool(text) is False


@pytest.mark.parametrize("text", ["true", "1", "on", "yes", "True", " ON "])
def test_parse_bool_true_words(text: str) -> None:
    assert parse_bool(text) is True


def test_parse_bool_rejects_other_words() -> None:
    with pytest.raises(ValueError, match="not a boolean: 'maybe'"):
        parse_bool("maybe")


@pytest.mark.parametrize("text", ["false", "0", "off"])
async def test_env_false_words_turn_streaming_off(
    text: str, monkeypatch: pytest.MonkeyPatch, start_service: StartService
) -> None:
    service = await start_service(make_settings(flag_provider=FlagProviderName.ENV))
    monkeypatch.setenv(ENV, text)
    assert await service.streaming_enabled(ctx()) is False


@pytest.mark.parametrize("text", ["true", "1", "on"])
async def test_env_true_words_turn_streaming_on(
    text: str, monkeypatch: pytest.MonkeyPatch, start_service: StartService
) -> None:
    settings = make_settings(flag_provider=FlagProviderName.ENV, streaming_enabled=False)
    service = await start_service(settings)
    monkeypatch.setenv(ENV, text)
    assert await service.streaming_enabled(ctx()) is True


@pytest.mark.parametrize("default", [True, False])
async def test_env_unset_gives_settings_default(default: bool, start_service: StartService) -> None:
    settings = make_settings(flag_provider=FlagProviderName.ENV, streaming_enabled=default)
    service = await start_service(settings)
    details = await service.evaluate(ctx())
    assert (details.value, details.error_code) == (default, None)


async def test_env_garbage_gives_default_with_parse_error(
    monkeypatch: pytest.MonkeyPatch, start_service: StartService
) -> None:
    service = await start_service(make_settings(flag_provider=FlagProviderName.ENV))
    monkeypatch.setenv(ENV, "maybe")
    details = await service.evaluate(ctx())
    assert (details.value, details.error_code) == (True, ErrorCode.PARSE_ERROR)


async def test_env_change_reaches_subscribers_by_polling(
    monkeypatch: pytest.MonkeyPatch, start_service: StartService
) -> None:
    """No provider events here: the poll loop alone must notice the change."""
    settings = make_settings(flag_provider=FlagProviderName.ENV)
    service = await start_service(settings, poll_interval_s=0.05)
    calls: list[None] = []
    service.subscribe(lambda: calls.append(None))
    monkeypatch.setenv(ENV, "off")
    await apoll_until(lambda: bool(calls), WAIT_S, what="poll notification")
    assert await service.streaming_enabled(ctx()) is False
