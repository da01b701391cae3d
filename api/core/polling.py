"""Deadline-bounded polling: check a condition every `interval_s` until it holds or time is up.

One contract for every wait on something we cannot be notified about (a port that opens, a
process that exits, a flag file that changes): the condition's first truthy value is returned;
when `timeout_s` passes first, `PollTimeout` (a `TimeoutError`) names what was awaited. The
condition is always checked at least once, and once more at the deadline itself, so a zero
timeout is a single check. An exception raised by the condition ends the wait at once: that is
how a caller fails fast (the process it waits on died, a task it watches ended).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar, overload

T = TypeVar("T")

DEFAULT_INTERVAL_S = 0.05


class PollTimeout(TimeoutError):
    """The deadline passed before the condition held. Its own class, so a caller that turns it
    into a domain error does not also catch a timeout raised inside the condition."""

    def __init__(self, what: str, timeout_s: float) -> None:
        super().__init__(f"timed out after {timeout_s:g} s waiting for {what}")
        self.what = what
        self.timeout_s = timeout_s


def poll_until(
    condition: Callable[[], T],
    timeout_s: float,
    *,
    interval_s: float = DEFAULT_INTERVAL_S,
    what: str = "the condition",
) -> T:
    """Call `condition` until it returns a truthy value and return that value; sleeps
    `interval_s` between calls (blocking: for threads and synchronous code)."""
    deadline = time.monotonic() + timeout_s
    while not (value := condition()):
        left = deadline - time.monotonic()
        if left <= 0:
            raise PollTimeout(what, timeout_s)
        time.sleep(min(interval_s, left))  # polling interval of a deadline-bounded wait
    return value


@overload
async def apoll_until(
    condition: Callable[[], Awaitable[T]],
    timeout_s: float,
    *,
    interval_s: float = ...,
    what: str = ...,
) -> T: ...


@overload
async def apoll_until(
    condition: Callable[[], T],
    timeout_s: float,
    *,
    interval_s: float = ...,
    what: str = ...,
) -> T: ...


async def apoll_until(
    condition: Callable[[], T | Awaitable[T]],
    timeout_s: float,
    *,
    interval_s: float = DEFAULT_INTERVAL_S,
    what: str = "the condition",
) -> T:
    """`poll_until` for the event loop: `condition` may be a plain function or return an
    awaitable (an `async def`), and the wait between calls is `asyncio.sleep`."""
    deadline = time.monotonic() + timeout_s
    while not (value := await _resolve(condition())):
        left = deadline - time.monotonic()
        if left <= 0:
            raise PollTimeout(what, timeout_s)
        await asyncio.sleep(min(interval_s, left))  # polling interval of a deadline-bounded wait
    return value


async def _resolve(result: T | Awaitable[T]) -> T:
    if inspect.isawaitable(result):
        return await result
    return result
