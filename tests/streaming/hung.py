"""A hung Triton: its whole process group (server and Python backend stubs) SIGSTOPped. It keeps
its sockets, so calls neither fail nor answer, as with a wedged server or a frozen node."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator

from api.triton_server.embedded import EmbeddedTriton


@contextlib.contextmanager
def frozen(triton: EmbeddedTriton) -> Iterator[None]:
    """SIGSTOP Triton's process group; SIGCONT on every exit path (the server is shared)."""
    assert triton.pid is not None, "Triton is not running"
    group = os.getpgid(triton.pid)
    os.killpg(group, signal.SIGSTOP)
    try:
        yield
    finally:
        os.killpg(group, signal.SIGCONT)
