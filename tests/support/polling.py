"""The tests' one addition to api/core/polling: how long a wait took, for the tests that hold a
latency promise (a flag flip reaches sessions within 2 s)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from api.core.polling import apoll_until

LATENCY_POLL_S = 0.005  # fine enough that the measured time is the product's, not the poll's


async def seconds_until(
    condition: Callable[[], object] | Callable[[], Awaitable[object]],
    timeout_s: float,
    *,
    what: str = "the condition",
) -> float:
    """`apoll_until` that returns the seconds until `condition` held (raises `PollTimeout`)."""
    started = time.monotonic()
    await apoll_until(condition, timeout_s, interval_s=LATENCY_POLL_S, what=what)
    return time.monotonic() - started
