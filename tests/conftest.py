"""Shared fixtures. The embedded Triton is the real tritonserver binary; it is started once per
test session and stopped on every exit path (finalizer + its own process group)."""

from __future__ import annotations

import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.triton_server.embedded import EmbeddedTriton, TritonPorts


def sigint_default() -> None:
    """`preexec_fn` for a child that a test Ctrl-C's: a shell without job control starts
    background jobs (a CI runner's pytest, say) with SIGINT ignored, and children inherit that;
    the child must get SIGINT as a terminal would send it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_ports() -> TritonPorts:
    return TritonPorts(grpc=free_port(), http=free_port(), metrics=free_port())


@pytest.fixture(scope="session")
def triton(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedTriton]:
    server = EmbeddedTriton(workdir=tmp_path_factory.mktemp("triton"), ports=free_ports())
    try:
        server.start(timeout_s=240)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]
