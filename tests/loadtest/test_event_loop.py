"""The load tools run on uvloop unless told otherwise (api/loadtest/event_loop.py)."""

from __future__ import annotations

import asyncio

import pytest
import uvloop

from api.loadtest import event_loop


async def _loop_type() -> type:
    return type(asyncio.get_running_loop())


def test_the_load_tools_run_on_uvloop_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(event_loop.LOOP_ENV, raising=False)
    assert event_loop.loop_name() == "uvloop"
    assert issubclass(event_loop.run(_loop_type()), uvloop.Loop)


def test_the_standard_loop_on_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(event_loop.LOOP_ENV, "asyncio")
    assert not issubclass(event_loop.run(_loop_type()), uvloop.Loop)


def test_an_unknown_loop_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(event_loop.LOOP_ENV, "trio")
    with pytest.raises(ValueError, match="FRAMEGATE_LOADGEN_LOOP must be one of uvloop, asyncio"):
        event_loop.run(_loop_type())


def test_the_coroutine_result_comes_back() -> None:
    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    assert event_loop.run(answer()) == 42
