"""The load tools' event loop: uvloop, as the gateway's (uvicorn[standard] installs it).

A load generator shares the cores with the stack it measures, so every CPU second it spends on
its own event loop is taken from the server: asyncio's pure-Python loop costs a callback,
a heap push and a selector round per message. `FRAMEGATE_LOADGEN_LOOP=asyncio` runs the
standard loop instead, to measure the difference side by side."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

LOOP_ENV = "FRAMEGATE_LOADGEN_LOOP"
LOOPS = ("uvloop", "asyncio")


def loop_name() -> str:
    """The loop the load tools run on: uvloop unless the environment asks for asyncio or
    uvloop is not installed (it does not exist on Windows)."""
    wanted = os.environ.get(LOOP_ENV, "uvloop").strip().lower() or "uvloop"
    if wanted not in LOOPS:
        raise ValueError(f"{LOOP_ENV} must be one of {', '.join(LOOPS)}, got {wanted!r}")
    if wanted == "uvloop":
        try:
            import uvloop  # noqa: F401
        except ImportError:
            return "asyncio"
    return wanted


def run(coro: Coroutine[Any, Any, T]) -> T:
    """asyncio.run on the load tools' loop."""
    try:
        name = loop_name()
    except ValueError:
        coro.close()  # never started: no "was never awaited" warning on top of the error
        raise
    if name == "uvloop":
        import uvloop

        return uvloop.run(coro)
    return asyncio.run(coro)
