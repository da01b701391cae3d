"""Shared fixtures. The embedded Triton is the real tritonserver binary; it is started once per
test session and stopped on every exit path (finalizer; and the kernel kills it if pytest dies).
Test processes are started and stopped through `api/core/processes.py`; a child that a test
Ctrl-C's is spawned with `default_sigint=True` (a shell without job control, a CI runner's say,
starts background jobs with SIGINT ignored, and children inherit that)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from api.triton_server.embedded import EmbeddedTriton
from tests.support.ports import free_ports

# Every property test: no per-example deadline (a busy 2-core CI machine is no reason for a
# property to fail) and no example database in the checkout; CI replays the same examples.
hypothesis_settings.register_profile(
    "framegate", deadline=None, database=None, derandomize=bool(os.environ.get("CI"))
)
hypothesis_settings.load_profile("framegate")


FAST_LAYER = "not triton"


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    """`pytest -m "not triton"` (the fast layer) runs in cores + 1 processes (pytest-xdist):
    its tests are CPU-bound or wait on short timers, and none shares state between processes.
    An explicit `-n` wins; the whole suite stays in one process, where the slow layer's tests
    share one tritonserver. Runs before xdist's own hook reads the option (both tryfirst; a
    conftest registers after the plugin, so it is called first)."""
    option = config.option
    wanted = getattr(option, "numprocesses", "absent")
    worker = "PYTEST_XDIST_WORKER" in os.environ  # a worker itself runs its share, in process
    if option.markexpr.strip() == FAST_LAYER and wanted is None and not worker:
        option.numprocesses = len(os.sched_getaffinity(0)) + 1


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


class _SubprocessInFastLayer(AssertionError):
    pass


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> object:
    """The fast layer (`pytest -m "not triton"`) stays fast and needs no server: a test that is
    not marked `triton` may not start a process, neither itself nor through a fixture it sets up
    (tritonserver, the API, any subprocess). Setup, call and teardown all run inside this."""
    if item.get_closest_marker("triton") is not None:
        return (yield)
    real = subprocess.Popen._execute_child  # type: ignore[attr-defined]

    def refuse(self: subprocess.Popen, args: object, *rest: object, **kw: object) -> None:
        raise _SubprocessInFastLayer(
            f"{item.nodeid} starts a process ({args!r}) but is not marked @pytest.mark.triton"
        )

    subprocess.Popen._execute_child = refuse  # type: ignore[attr-defined]
    try:
        return (yield)
    finally:
        subprocess.Popen._execute_child = real  # type: ignore[attr-defined]
