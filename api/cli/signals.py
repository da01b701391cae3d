"""How the long-running commands (`up`, `triton`, `drill`) take SIGTERM: as Ctrl-C.

One strategy for all of them: SIGTERM (Kubernetes, a CI runner's timeout, `kill`) raises
KeyboardInterrupt in the main thread, so the command leaves through the same `except` and
`finally` as Ctrl-C and stops what it started (Triton, the API, a drill's stack) instead of the
process dying around it. uvicorn installs its own handlers while it serves and re-raises the
signal through this one afterwards, so `framegate up` drains first, then stops Triton.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def interrupt_on_sigterm() -> Any:
    """Make SIGTERM raise KeyboardInterrupt from now on; returns the previous handler (None
    outside the main thread, where handlers cannot be set and nothing changes)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _interrupt)


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """interrupt_on_sigterm() for a block; the previous handler is back afterwards."""
    previous = interrupt_on_sigterm()
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def wait_for_interrupt() -> None:
    """Block until Ctrl-C or SIGTERM (as KeyboardInterrupt, with interrupt_on_sigterm)."""
    while True:
        signal.pause()  # any other signal (SIGCHLD...) wakes it; keep waiting
