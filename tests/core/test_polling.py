"""api/core/polling.py: the deadline-bounded wait every poll loop in the project uses."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import pytest

from api.core.polling import PollTimeout, apoll_until, poll_until

GENEROUS_S = 30.0  # a deadline only a broken helper reaches


def true_on_call(n: int, value: object = "ready") -> tuple[Callable[[], object], list[int]]:
    """A condition that is falsy on its first n-1 calls and returns `value` on call n."""
    calls: list[int] = []

    def condition() -> object:
        calls.append(len(calls) + 1)
        return value if len(calls) >= n else None

    return condition, calls


def test_poll_until_true_at_once_checks_once() -> None:
    condition, calls = true_on_call(1)
    assert poll_until(condition, GENEROUS_S, interval_s=0) == "ready"
    assert calls == [1]


def test_poll_until_returns_the_truthy_value_after_n_polls() -> None:
    condition, calls = true_on_call(4, value={"pid": 7})
    assert poll_until(condition, GENEROUS_S, interval_s=0) == {"pid": 7}
    assert calls == [1, 2, 3, 4]  # stops at the first truthy value


def test_poll_until_timeout_names_what_and_the_timeout() -> None:
    condition, calls = true_on_call(10**9)
    with pytest.raises(PollTimeout, match=r"^timed out after 0.05 s waiting for the port$") as err:
        poll_until(condition, 0.05, interval_s=0.01, what="the port")
    assert isinstance(err.value, TimeoutError)
    assert (err.value.what, err.value.timeout_s) == ("the port", 0.05)
    assert len(calls) >= 2  # the first check, and a last one at the deadline


def test_poll_until_zero_timeout_is_one_check() -> None:
    condition, calls = true_on_call(2)
    with pytest.raises(PollTimeout):
        poll_until(condition, 0)
    assert calls == [1]


def test_poll_until_condition_error_ends_the_wait_at_once() -> None:
    calls: list[int] = []

    def died() -> bool:
        calls.append(1)
        raise RuntimeError("the process exited")

    with pytest.raises(RuntimeError, match="the process exited"):
        poll_until(died, GENEROUS_S)
    assert calls == [1]


async def test_apoll_until_sync_condition_after_n_polls() -> None:
    condition, calls = true_on_call(3)
    assert await apoll_until(condition, GENEROUS_S, interval_s=0) == "ready"
    assert calls == [1, 2, 3]


async def test_apoll_until_awaits_an_async_condition() -> None:
    condition, calls = true_on_call(3, value=42)

    async def check() -> object:
        await asyncio.sleep(0)
        return condition()

    assert await apoll_until(check, GENEROUS_S, interval_s=0) == 42
    assert calls == [1, 2, 3]


async def test_apoll_until_lets_the_loop_run_between_polls() -> None:
    """The condition turns true only through another task: a blocking sleep would starve it."""
    ticks: list[int] = []

    async def ticker() -> None:
        while True:
            ticks.append(1)
            await asyncio.sleep(0.001)

    task = asyncio.create_task(ticker())
    try:
        assert await apoll_until(lambda: len(ticks) >= 5, GENEROUS_S, interval_s=0.001)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_apoll_until_timeout_names_what() -> None:
    condition, calls = true_on_call(10**9)

    async def check() -> object:
        return condition()

    with pytest.raises(PollTimeout, match=r"^timed out after 0.05 s waiting for the flag$"):
        await apoll_until(check, 0.05, interval_s=0.01, what="the flag")
    assert len(calls) >= 2


async def test_apoll_until_condition_error_ends_the_wait_at_once() -> None:
    async def failed() -> bool:
        raise RuntimeError("the load task ended")

    with pytest.raises(RuntimeError, match="the load task ended"):
        await apoll_until(failed, GENEROUS_S)
