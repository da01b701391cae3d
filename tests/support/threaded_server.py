"""A uvicorn server on a thread of the test process, for tests of the server configuration."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import uvicorn

from api.core.polling import poll_until


@contextmanager
def threaded(
    config: uvicorn.Config,
    on_thread: Callable[[], Callable[[], None]] | None = None,
    server: uvicorn.Server | None = None,
) -> Iterator[uvicorn.Server]:
    """Serve `config` (or run `server`, built on it) on a daemon thread until the block ends.
    `on_thread` runs first on that thread (the thread of the server's event loop) and returns
    what undoes it afterwards."""
    server = server or uvicorn.Server(config)

    def run() -> None:
        undo = on_thread() if on_thread is not None else None
        try:
            server.run()
        finally:
            if undo is not None:
                undo()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        poll_until(lambda: server.started, 20, what="uvicorn started")
        yield server
    finally:
        server.should_exit = True
        thread.join(20)
